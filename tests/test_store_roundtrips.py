"""Writes to the store in one round trip each, still right when Redis lost its scripts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection

from model.events import Approved, UserMessage
from model.records import Origin, OutboxItem, RequestRecord
from store import keys
from store.errors import LeaseLost
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


def _count_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts what this process sends Redis: one per command or pipeline (a round trip)."""
    sent = [0]
    original = AbstractConnection._send_packed_command

    async def counted(self: Any, command: Any) -> None:
        sent[0] += 1
        await original(self, command)

    monkeypatch.setattr(AbstractConnection, "_send_packed_command", counted)
    return sent


async def test_a_releasing_commit_publishes_and_acknowledges_in_its_own_round_trip(
    store: ThreadStore, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One server: the commit script itself indexes the request, hands the outbox item to
    the senders and acknowledges the run's entry; no marker is left to publish later."""
    assert await store.append_inbound("th_c", _message(), dedupe="m1", create=NEW)
    [entry] = await store.runs.read("w", 10, 100)
    lease = await store.acquire("th_c", "w", 5_000)
    assert lease is not None
    record = RequestRecord(request_id="rq_c", thread_id="th_c", kind="approval", text="ok?")
    item = OutboxItem(
        outbox_id="out_c", thread_id="th_c", kind="approval", text="ok?", to=NEW.origin
    )
    sent = _count_sends(monkeypatch)
    result = await store.commit(
        lease,
        ttl_ms=5_000,
        requests=[record],
        outbox=[item],
        release=True,
        ack=(store.runs, entry),
    )
    assert result.released
    assert sent == [1]
    assert [v.request.request_id for v in await store.pending_requests()] == ["rq_c"]
    [pointer] = await store.outbox_stream.read("s", 10, 100)
    assert pointer.fields == {"t": "th_c", "o": "out_c"}
    assert await redis_client.xlen(entry.key) == 0  # acknowledged and deleted
    assert not await redis_client.hexists(keys.state("th_c"), keys.UNPUBLISHED)


async def test_a_stale_commit_publishes_nothing(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    assert await store.append_inbound("th_d", _message(), dedupe="m1", create=NEW)
    [entry] = await store.runs.read("w", 10, 100)
    stale = await store.acquire("th_d", "w", 1)
    assert stale is not None
    await asyncio.sleep(0.01)
    assert await store.acquire("th_d", "w2", 5_000) is not None  # the lease ran out
    record = RequestRecord(request_id="rq_d", thread_id="th_d", kind="approval", text="ok?")
    with pytest.raises(LeaseLost):
        await store.commit(
            stale, ttl_ms=5_000, requests=[record], release=True, ack=(store.runs, entry)
        )
    assert await store.pending_requests() == []
    assert await redis_client.xlen(entry.key) == 1  # still there for its run
