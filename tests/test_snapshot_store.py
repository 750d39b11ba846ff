"""The snapshot in Redis: written by the fenced commit that releases, loaded with the tail,
equal to the one built from the log, and built again from the log when it cannot be read."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
import redis.asyncio as aioredis

from agent import prompts, snapshot
from agent.config import Registry
from agent.context import render
from agent.llm import Completion
from agent.runner import Run, RunSettings
from agent.tools import Agent
from model.events import Event, FinalAnswer, UserMessage
from model.records import Origin
from store import keys
from store.errors import LeaseLost
from store.snapshot import Stored, stored
from store.threads import NewThread, ThreadStore
from tests.test_compaction import _long

SETTINGS = RunSettings(lease_ttl_ms=5_000, llm_retry_delay=0.01)


class Scripted:
    """The LLM protocol, answering "done" at once; it keeps what it was shown."""

    def __init__(self) -> None:
        self.seen: list[list[dict[str, str]]] = []

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
        self.seen.append(messages)
        return Completion(json.dumps({"step": {"intent": "done_for_now", "message": "ok"}}))


def _agent(registry: Registry) -> Agent:
    return registry.agents["deploybot"]


async def _old_thread(store: ThreadStore, tid: str, turns: int) -> None:
    """A thread as the code before snapshots wrote it: the log, and no snapshot."""
    log = _long(turns)
    origin = Origin(channel="slack", address="C1")
    await store.append_inbound(tid, log[0], create=NewThread(agent="deploybot", origin=origin))
    lease = await store.acquire(tid, "writer", 5_000)
    assert lease is not None
    await store.commit(lease, ttl_ms=5_000, events=log[1:], state={"status": "done"})
    await store.commit(lease, ttl_ms=5_000, release=True)


async def _say(store: ThreadStore, tid: str, text: str) -> None:
    await store.append_inbound(tid, UserMessage(channel="slack", sender="U042", text=text))


async def _run(store: ThreadStore, agent: Agent, tid: str, llm: Scripted) -> list[Event]:
    """One run; returns the whole log as the model should have seen it before deciding."""
    lease = await store.acquire(tid, "worker", 5_000)
    assert lease is not None
    before = (await store.thread(tid)).events
    await Run(lease, agent, llm, store, SETTINGS).go()
    return before


async def _check(store: ThreadStore, agent: Agent, tid: str) -> Stored:
    """The stored snapshot is the one the whole log gives."""
    found = await stored(store.redis, tid)
    assert found is not None
    log = (await store.thread(tid)).events
    thread_agent = prompts.for_thread(agent, tid, log)
    assert snapshot.parse(found.body) == snapshot.build(thread_agent, log)
    return found


async def test_a_thread_from_before_snapshots_runs_and_gets_one(
    store: ThreadStore, registry: Registry
) -> None:
    agent, llm = _agent(registry), Scripted()
    await _old_thread(store, "th_old", 30)
    assert await stored(store.redis, "th_old") is None
    await _say(store, "th_old", "deploy v2.0.0 to staging")
    log = await _run(store, agent, "th_old", llm)
    assert llm.seen == [render(prompts.for_thread(agent, "th_old", log), log).messages]
    found = await _check(store, agent, "th_old")
    assert found.upto > 0
    assert isinstance((await store.thread("th_old")).events[-1], FinalAnswer)


async def test_the_next_run_loads_the_tail_and_decides_as_over_the_whole_log(
    store: ThreadStore, registry: Registry
) -> None:
    agent, llm = _agent(registry), Scripted()
    await _old_thread(store, "th_t", 30)
    await _say(store, "th_t", "first")
    await _run(store, agent, "th_t", llm)
    found = await _check(store, agent, "th_t")
    await _say(store, "th_t", "second")
    lease = await store.acquire("th_t", "worker", 5_000)
    assert lease is not None
    whole = (await store.thread("th_t")).events
    assert lease.base == found.upto
    assert lease.events == whole[found.upto :]  # the tail only
    await Run(lease, agent, llm, store, SETTINGS).go()
    assert llm.seen[-1] == render(prompts.for_thread(agent, "th_t", whole), whole).messages


@pytest.mark.parametrize(
    "damage",
    [
        {keys.SNAPSHOT_BODY: "not json"},
        {keys.SNAPSHOT_BODY: zlib.compress(b'{"version": 0}')},
        {keys.SNAPSHOT_UPTO: "999999"},
    ],
    ids=["unreadable", "another version", "past the log"],
)
async def test_a_snapshot_that_cannot_serve_is_built_again_from_the_log(
    store: ThreadStore, registry: Registry, damage: dict[str, str | bytes]
) -> None:
    agent, llm = _agent(registry), Scripted()
    await _old_thread(store, "th_d", 30)
    await _say(store, "th_d", "first")
    await _run(store, agent, "th_d", llm)
    await store.redis.hset(keys.snapshot("th_d"), mapping=damage)  # type: ignore[arg-type]
    await _say(store, "th_d", "second")
    log = await _run(store, agent, "th_d", llm)
    assert llm.seen[-1] == render(prompts.for_thread(agent, "th_d", log), log).messages
    assert isinstance((await store.thread("th_d")).events[-1], FinalAnswer)
    await _check(store, agent, "th_d")


async def test_a_stale_lease_holder_writes_no_snapshot(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await _old_thread(store, "th_s", 3)
    stale = await store.acquire("th_s", "a", 5_000)
    assert stale is not None
    await store.commit(stale, ttl_ms=5_000, release=True)
    taken = await store.acquire("th_s", "b", 5_000)
    assert taken is not None
    with pytest.raises(LeaseLost):
        await store.commit(stale, ttl_ms=5_000, snapshot=Stored(3, b"{}"))
    await store.commit(taken, ttl_ms=5_000, snapshot=Stored(10_000, b"{}"))  # past the log
    assert await redis_client.exists(keys.snapshot("th_s")) == 0
