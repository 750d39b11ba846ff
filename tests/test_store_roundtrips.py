"""Inbound writes to the store: one round trip each, still right when Redis lost its scripts."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from model.events import Approved, UserMessage
from model.records import Origin, RequestRecord
from store import keys
from store.threads import NewThread, ThreadStore

NEW = NewThread(agent="deploybot", origin=Origin(channel="rest", address="alice"))


def _message(text: str = "deploy v1.2.3 to production") -> UserMessage:
    return UserMessage(channel="rest", sender="alice", text=text, message_id="m1")


async def _commands(client: aioredis.Redis) -> dict[str, int]:
    stats: Any = await client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


async def _pending_approval(store: ThreadStore, tid: str) -> str:
    lease = await store.acquire(tid, "w", 5_000)
    assert lease is not None
    record = RequestRecord(request_id="rq_1", thread_id=tid, kind="approval", text="ok?")
    await store.commit(lease, ttl_ms=5_000, requests=[record], release=True)
    return record.request_id


async def test_append_and_answer_send_no_script_checks(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await redis_client.config_resetstat()
    assert await store.append_inbound("th_a", _message(), dedupe="m1", create=NEW)
    rid = await _pending_approval(store, "th_a")
    await store.answer(
        rid,
        Approved(
            request_id=rid,
            channel="rest",
            responder="alice",
        ),
    )
    calls = await _commands(redis_client)
    assert "script|exists" not in calls
    assert "script|load" not in calls  # setup() loaded them


async def test_lost_scripts_are_reloaded_and_the_write_lands_once(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await redis_client.script_flush()
    assert await store.append_inbound("th_b", _message(), dedupe="m1", create=NEW)
    assert not await store.append_inbound("th_b", _message(), dedupe="m1")
    assert len(await redis_client.lrange(keys.inbox("th_b"), 0, -1)) == 1

    rid = await _pending_approval(store, "th_b")
    await redis_client.script_flush()
    record = await store.answer(
        rid,
        Approved(
            request_id=rid,
            channel="rest",
            responder="alice",
        ),
    )
    assert record.thread_id == "th_b"
    view = await store.thread("th_b")
    assert [r.status for r in view.requests] == ["answered"]
    assert [type(e).__name__ for e in view.inbox] == ["Approved"]
    assert await store.pending_requests() == []
