"""Shared fixtures: a real Redis server, a fake OpenAI server, and a guard on the network.

Redis is the bundled redis-server binary on a free loopback port (so the suite needs nothing
preinstalled); each test starts from an empty database.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from agent import config, handoff
from agent.config import Registry
from agent.llm import OpenAILLM
from agent.outbox import OutboxDispatcher, OutboxSettings
from agent.runner import RunSettings
from agent.worker import Worker, WorkerSettings
from channels.app import create_app
from channels.rest import rest_channel
from channels.rest.auth import Access
from channels.rest.sender import RestSender
from model.records import ThreadView
from store import connection, embedded
from store.calls import Calls
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent


# ---- nothing leaves the machine ------------------------------------------------------------
def _loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _loopback(address):
        raise OSError(f"test tried to reach {address!r}: only loopback is allowed")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _loopback(address):
        raise OSError(f"test tried to reach {address!r}: only loopback is allowed")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


# ---- Redis ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    server = embedded.start_ephemeral()
    yield server.url
    server.stop()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    # The service's own client (coalescing, hiredis-packed), so every test that drives the
    # store in-process runs on what ships; retrying, as redis-py's default client was.
    client = connection.connect(redis_url, retrying=True)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_client: aioredis.Redis) -> ThreadStore:
    s = ThreadStore(redis_client)
    await s.setup()
    return s


# ---- the model --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture
def fake_llm(_fake_openai: FakeOpenAI) -> FakeOpenAI:
    _fake_openai.reset()
    return _fake_openai


@pytest.fixture
async def llm(fake_llm: FakeOpenAI) -> AsyncIterator[OpenAILLM]:
    client = OpenAILLM(model="fake-model", api_key="test-key", base_url=fake_llm.base_url)
    yield client
    await client.close()


# ---- the service, in this process ----------------------------------------------------------
@pytest.fixture
def registry() -> Registry:
    return config.load(ROOT / "switchboard.toml")


def children(redis_client: aioredis.Redis) -> dict[str, Any]:
    """The sender that brings a child thread's answer to its parent (agent.handoff)."""
    return {handoff.CHANNEL: handoff.ToParent(Calls(redis_client))}


FAST = RunSettings(lease_ttl_ms=5_000, llm_retry_delay=0.01)


class Service:
    """API client plus a worker and outbox running in the test's loop."""

    def __init__(self, store: ThreadStore, api: httpx.AsyncClient) -> None:
        self.store = store
        self.api = api

    async def wait(
        self, thread_id: str, until: Callable[[ThreadView], bool], within: float = 10
    ) -> ThreadView:
        deadline = time.monotonic() + within
        while True:
            try:
                view = await self.store.thread(thread_id)
            except RedisConnectionError:
                # A worker that meets a Redis error drops the pool's idle connections, and
                # this test client shares the pool: a read in that moment is retried, as the
                # service's own retrying clients do (store.connection).
                await asyncio.sleep(0.02)
                continue
            if until(view):
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"thread never reached the state; last: {view.state}")
            await asyncio.sleep(0.02)

    async def settled(self, thread_id: str, status: str, within: float = 10) -> ThreadView:
        """Wait until the thread rests in ``status`` with its inbox merged and outbox sent."""

        def done(v: ThreadView) -> bool:
            return (
                v.state.status == status
                and v.state.lease_owner is None
                and not v.inbox
                and all(o.status != "pending" and o.status != "sending" for o in v.outbox)
            )

        return await self.wait(thread_id, done, within)


@pytest.fixture
async def service_factory(
    redis_client: aioredis.Redis, store: ThreadStore, registry: Registry
) -> AsyncIterator[Callable[..., Awaitable[Service]]]:
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    clients: list[httpx.AsyncClient] = []

    async def make(
        llm: Any,
        *,
        api_token: str | None = None,
        access: Access | None = None,
        reg: Registry | None = None,
        run: RunSettings = FAST,
        senders: dict[str, Any] | None = None,
    ) -> Service:
        reg = reg or registry
        worker = Worker(
            store,
            reg,
            llm,
            name=f"test-{len(tasks)}",
            settings=WorkerSettings(concurrency=4, run=run, block_ms=50),
        )
        dispatcher = OutboxDispatcher(
            store.outbox_stream,
            OutboxStore(redis_client),
            senders if senders is not None else {"rest": RestSender(), **children(redis_client)},
            name=worker.name,
            settings=OutboxSettings(base_delay=0.05, claim_ms=2_000),
        )
        worker.deliver_with(dispatcher)
        tasks.append(asyncio.create_task(worker.run(stop)))
        tasks.append(asyncio.create_task(dispatcher.run(stop)))
        port = ChannelPort(store, OutboxStore(redis_client))
        rules = access or Access(shared=api_token)
        rest = rest_channel(port, reg, rules)
        app = create_app(redis_client, reg, access=rules, channels=[rest])
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb")
        clients.append(client)
        return Service(store, client)

    yield make
    stop.set()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    for client in clients:
        await client.aclose()


@pytest.fixture
async def service(service_factory: Callable[..., Awaitable[Service]], llm: OpenAILLM) -> Service:
    return await service_factory(llm)
