"""The live stream: what changed, pushed to every open console as server-sent events.

One change feed per process (store.changes), read once per batch of changed threads and
fanned out to the connections: a hundred open tabs cost one subscription and one read per
change, not a hundred polls. Each connection starts with a snapshot (the pending requests
and the newest threads); after that it gets a ``thread`` event per changed thread. A
connection too slow to keep up, or a feed that lost Redis for a moment, gets a new snapshot.

The stream is a plain authenticated GET: the console reads it with fetch() and sends the
same Authorization header as every other call, so no token or ticket ever sits in a URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Literal

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import AppStatus

from agent.config import Registry
from channels.rest.auth import caller_of
from model.views import RequestDigest, ThreadDigest
from store.changes import RESYNC, ChangeFeed
from store.digest import Digests

log = logging.getLogger(__name__)

QUEUE_SIZE = 256
"""Messages one connection may lag behind; past that it is sent a fresh snapshot instead."""
KNOWN_THREADS = 10_000
"""Log lengths remembered per process, so a change sends only the events that are new."""
PING_S = 15
"""Keep-alive comment interval: proxies keep the connection, dead peers are noticed."""
SHUTDOWN_GRACE_S = 2.0
"""How long a stream may take to end cleanly once the server shuts down."""
SNAPSHOT_THREADS = 100
SNAPSHOT_REQUESTS = 500

Message = tuple[Literal["thread"], str] | Literal["resync"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Snapshot(_Frozen):
    """The first event of a stream, and again whenever the receiver may have missed one."""

    requests: list[RequestDigest]
    """Pending requests, oldest first."""
    threads: list[ThreadDigest]
    """The newest threads first."""


class Session(_Frozen):
    auth: Literal["token", "loopback"]
    """``loopback``: no API token is configured, and the API listens on loopback only."""
    operator: str
    """Who the console's decisions are recorded as (``rest:<operator>``)."""


class AgentInfo(_Frozen):
    name: str
    description: str
    default: bool


class Hub:
    """Fans one change feed out to the open streams; runs only while one is open."""

    def __init__(self, feed: ChangeFeed, digests: Digests) -> None:
        self._feed = feed
        self.digests = digests
        self._queues: set[asyncio.Queue[Message]] = set()
        self._known: OrderedDict[str, int] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = False
        """The feed has subscribed: from then on a newcomer needs its own snapshot."""

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[Message]]:
        """A queue of messages for one connection; RESYNC (send a snapshot) comes first.

        A feed that is still subscribing sends RESYNC to everyone once it is subscribed; with
        one already subscribed, the newcomer's own RESYNC is put in here. Either way, one
        snapshot per connection, read after the subscription: no change falls in between.
        """
        queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_SIZE)
        if self._task is None or self._task.done():
            self._subscribed = False
            self._task = asyncio.create_task(self._pump(), name="console-changes")
        elif self._subscribed:
            queue.put_nowait(RESYNC)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
            if not self._queues and self._task is not None:
                self._task.cancel()
                self._task = None

    def _send(self, message: Message) -> None:
        for queue in self._queues:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(RESYNC)

    async def _pump(self) -> None:
        try:
            async for batch in self._feed.batches():
                if batch == RESYNC:
                    self._subscribed = True
                    self._send(RESYNC)
                    continue
                try:
                    changes = await self.digests.changes({t: self._known.get(t) for t in batch})
                except RedisError as exc:
                    log.warning("console stream could not read changes (%s)", exc)
                    self._send(RESYNC)
                    continue
                for change in changes:
                    tid = change.thread.meta.thread_id
                    self._known[tid] = change.thread.events
                    self._known.move_to_end(tid)
                    if len(self._known) > KNOWN_THREADS:
                        self._known.popitem(last=False)
                    self._send(("thread", change.model_dump_json()))
        except Exception:
            log.exception("console change feed stopped")
            raise

    async def snapshot(self) -> Snapshot:
        return Snapshot(
            requests=await self.digests.pending(SNAPSHOT_REQUESTS),
            threads=await self.digests.threads(SNAPSHOT_THREADS),
        )


async def _next(queue: asyncio.Queue[Message], shutdown: anyio.Event) -> Message | None:
    """The next message, or None once the server is shutting down."""
    get = asyncio.ensure_future(queue.get())
    stop = asyncio.ensure_future(shutdown.wait())
    done, _ = await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
    for task in (get, stop):
        task.cancel()
    return get.result() if get in done else None


def router(hub: Hub, registry: Registry, *, token_set: bool) -> APIRouter:
    api = APIRouter(tags=["console"])

    @api.get("/session", response_model=Session)
    async def session(request: Request) -> Session:
        """How this caller is signed in, and the name its decisions are recorded under."""
        caller = await caller_of(request)
        return Session(auth="token" if token_set else "loopback", operator=caller.name)

    @api.get("/agents", response_model=list[AgentInfo])
    async def agents() -> list[AgentInfo]:
        """The configured agents; threads can be started with any of them."""
        return [
            AgentInfo(name=a.name, description=a.description, default=a.name == registry.default)
            for a in registry.agents.values()
        ]

    @api.get("/stream", response_class=EventSourceResponse)
    async def stream() -> EventSourceResponse:
        """Server-sent events: ``snapshot`` first, then ``thread`` for each changed thread."""

        # Set by sse-starlette when the server shuts down: the stream then ends as a
        # complete response, and the console reconnects once the service is back.
        shutdown = anyio.Event()

        async def events() -> AsyncIterator[ServerSentEvent]:
            async with hub.listen() as queue:
                while (message := await _next(queue, shutdown)) is not None:
                    if message == RESYNC:
                        snap = await hub.snapshot()
                        yield ServerSentEvent(data=snap.model_dump_json(), event="snapshot")
                    else:
                        yield ServerSentEvent(data=message[1], event=message[0])

        return EventSourceResponse(
            events(),
            ping=PING_S,
            headers={"Cache-Control": "no-store"},
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_S,
        )

    return api


async def end_streams_on(stop: asyncio.Event) -> None:
    """The REST channel's listener: when the service stops, end every open stream as a
    complete response. sse-starlette learns of a shutdown from uvicorn's signal handlers,
    which the service replaces with its own (main.py), so it is told here instead."""
    await stop.wait()
    AppStatus.should_exit = True
