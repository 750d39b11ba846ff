"""The service rides out Redis restarts: ``main.py api`` and two ``main.py worker`` processes
against a Redis server that is killed with SIGKILL and started again, twice, mid-run. No
process exits, every thread finishes, nothing is done twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from model.events import AgentStep, FinalAnswer, ToolResult
from store.threads import ThreadStore
from tests.fakes.openai_server import FakeOpenAI, step
from tests.process import RestartableRedis, service_process, worker_process

CONFIG = """
[agents.deploybot]
module = "agent.examples.deploybot"
prompt = "deploybot/v1"

[agents.deploybot.tools.list_tags]
command = ["{python}", "-c", "import time; time.sleep(0.3); print('v1.2.3')"]

[agents.deploybot.tools.deploy]
command = ["{python}", "-c", "print('deployed')"]
approvers = ["rest:*"]

[agents.deploybot.tools.rollback]
command = ["{python}", "-c", "print('ok')"]
"""

THREADS_PER_PHASE = 6


def _brain(messages: list[dict[str, str]]) -> dict[str, Any]:
    """List the tags, then answer: two model decisions and a tool call per thread."""
    last = messages[-1]["content"].strip().splitlines()[-1]
    if last.startswith('<result tool="list_tags">'):
        return step("done_for_now", message="tags listed")
    return step("list_tags")


async def _post(api: httpx.AsyncClient, key: str) -> str:
    """Create a thread as a careful client does: retry on 503 with the same Idempotency-Key."""
    for _ in range(200):
        try:
            reply = await api.post(
                "/v1/threads",
                json={"message": f"list tags {key}"},
                headers={"Idempotency-Key": key},
            )
        except httpx.TransportError:
            reply = None
        if reply is not None and reply.status_code == 201:
            return str(reply.json()["thread_id"])
        assert reply is None or reply.status_code == 503, reply.text
        await asyncio.sleep(0.1)
    raise AssertionError(f"thread {key} was never created")


async def _degraded(api: httpx.AsyncClient) -> None:
    """While Redis is down the API says so: /healthz answers 503 'degraded'."""
    for _ in range(100):
        reply = await api.get("/healthz")
        if reply.status_code == 503:
            assert reply.json()["status"] == "degraded"
            return
        await asyncio.sleep(0.05)
    raise AssertionError("/healthz never reported the outage")


# Three processes, two restarts and the lease time-outs they cause: about 20 s on an idle
# machine, more on a loaded one; no timing is asserted.
@pytest.mark.timeout(180)
async def test_api_and_workers_ride_out_two_redis_restarts(
    tmp_path: Path, fake_llm: FakeOpenAI
) -> None:
    fake_llm.brain = _brain
    redis_server = RestartableRedis(tmp_path / "redis")
    redis_server.start()
    env = {
        "REDIS_URL": redis_server.url,
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "test-key",
        "SWITCHBOARD_LEASE_TTL_MS": "2000",
        "SWITCHBOARD_SHUTDOWN_GRACE": "5",
    }
    try:
        with (
            service_process(tmp_path, env, config=CONFIG, args=("api",)) as api_process,
            worker_process(tmp_path / "w1.log", {**env, **_config_env(tmp_path)}) as w1,
            worker_process(tmp_path / "w2.log", {**env, **_config_env(tmp_path)}) as w2,
        ):
            async with httpx.AsyncClient(base_url=api_process.base, timeout=30) as api:
                # Both workers up and working before anything is killed.
                ids = [await _post(api, f"a{i}") for i in range(THREADS_PER_PHASE)]
                await _all_done(redis_server.url, ids)
                for phase in ("b", "c"):
                    ids += [await _post(api, f"{phase}{i}") for i in range(THREADS_PER_PHASE)]
                    # Kill it with runs in flight: model calls made, tools running.
                    calls = len(fake_llm.requests)
                    await _until(lambda n=calls + 2: len(fake_llm.requests) >= n)
                    redis_server.kill()
                    await _degraded(api)
                    posting = asyncio.gather(
                        *(_post(api, f"{phase}x{i}") for i in range(THREADS_PER_PHASE))
                    )
                    await asyncio.sleep(0.5)
                    redis_server.start()
                    ids += await posting
                await _all_done(redis_server.url, ids)
            assert w1.poll() is None, "a worker exited"
            assert w2.poll() is None, "a worker exited"
            assert "Redis unreachable" in api_process.log()
        for log in ("w1.log", "w2.log"):
            text = (tmp_path / log).read_text()
            assert "Traceback" not in text, text[-3000:]
            # It met both outages (once each in the log, not once per retry) and carried on.
            assert text.count("Redis unreachable") >= 2, text[-3000:]
            assert "Redis is back" in text
    finally:
        redis_server.stop()


async def _until(check: Callable[[], bool], within: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "condition never reached"
        await asyncio.sleep(0.01)


def _config_env(tmp_path: Path) -> dict[str, str]:
    return {"SWITCHBOARD_CONFIG": str(tmp_path / "switchboard.toml")}


async def _all_done(url: str, ids: list[str]) -> None:
    client = aioredis.from_url(url)
    store = ThreadStore(client)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        pending = set(ids)
        while pending:
            for tid in sorted(pending):
                with contextlib.suppress(Exception):
                    view = await store.thread(tid)
                    # Finished: done and let go. Its answer may still wait to be sent: a send
                    # cut off by the outage is retried once its claim runs out (a minute).
                    if view.state.status == "done" and view.state.lease_owner is None:
                        pending.discard(tid)
            assert loop.time() < deadline, f"threads never finished: {sorted(pending)}"
            await asyncio.sleep(0.2)
        for tid in ids:
            view = await store.thread(tid)
            kinds = Counter(type(e).__name__ for e in view.events)
            assert kinds[FinalAnswer.__name__] == 1, (tid, kinds)
            steps = [e for e in view.events if isinstance(e, AgentStep)]
            assert [s.intent for s in steps] == ["list_tags", "done_for_now"], (tid, steps)
            results = [e.call_id for e in view.events if isinstance(e, ToolResult)]
            assert results == [steps[0].call_id], (tid, results)
            assert [o.item.kind for o in view.outbox] == ["final"], (tid, view.outbox)
            assert view.outbox[0].status in ("sent", "pending", "sending"), view.outbox
    finally:
        await client.aclose()
