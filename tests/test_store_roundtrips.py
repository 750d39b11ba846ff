"""Writes to the store in one round trip each, still right when Redis lost its scripts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection

from model.events import Answered, Approved, UserMessage, arguments_hash, utcnow
from model.ids import request_id_for, thread_of_request
from model.records import Origin, OutboxItem, RequestRecord
from store import keys
from store.errors import ArgumentsChanged, LeaseLost, NotAllowed, RequestNotFound, ThreadNotFound
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


async def test_acquire_and_commit_reload_lost_scripts_and_write_once(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    """The lease's acquire and commit call their scripts by SHA (store.scripts.call): lost
    by Redis, each is loaded again and the call made once more, landing once."""
    assert await store.append_inbound("th_s", _message(), dedupe="m1", create=NEW)
    await redis_client.script_flush()
    lease = await store.acquire("th_s", "w", 5_000)
    assert lease is not None
    await redis_client.script_flush()
    result = await store.commit(lease, ttl_ms=5_000, state={keys.STATUS: "idle"}, release=True)
    assert result.released
    view = await store.thread("th_s")
    assert [type(e).__name__ for e in view.events] == ["UserMessage"]
    assert view.state.status == "idle"


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
    assert (await redis_client.xpending(entry.key, store.runs.group))["pending"] == 0
    assert await redis_client.xlen(entry.key) == 1  # acknowledged; the next trim deletes it
    assert await store.runs.trim() == 1
    assert await redis_client.xlen(entry.key) == 0
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


async def test_a_message_and_an_answer_are_one_round_trip_each(
    store: ThreadStore, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One server: the append and answer scripts wake the thread and update the indexes
    themselves, and a request id names its thread, so nothing is looked up first."""
    sent = _count_sends(monkeypatch)
    assert await store.append_inbound("th_e", _message(), dedupe="m1", create=NEW)
    assert sent[0] == 1
    assert await store.append_inbound("th_e", _message("and to staging"), dedupe="m2")
    assert sent[0] == 2  # an existing thread: no EXISTS first
    lease = await store.acquire("th_e", "w", 5_000)
    assert lease is not None
    rid = request_id_for("th_e")
    deadline = utcnow() + timedelta(hours=1)
    record = RequestRecord(
        request_id=rid, thread_id="th_e", kind="approval", text="ok?", deadline=deadline
    )
    await store.commit(lease, ttl_ms=5_000, requests=[record], release=True)
    assert not await redis_client.hexists(store.shared.request_thread(rid), rid)  # not needed
    before = sent[0]
    answered = await store.answer(rid, Approved(request_id=rid, channel="rest", responder="bo"))
    assert sent[0] == before + 1
    assert answered == record
    assert await store.pending_requests() == []
    assert await redis_client.zscore(store.shared.deadlines(rid), rid) is None
    view = await store.request(rid)
    assert (view.status, view.approvals_given) == ("answered", 1)
    entries = await store.runs.read("w", 10, 10)
    assert [e.fields["t"] for e in entries] == ["th_e"] * 3  # two messages, one answer


async def test_a_message_to_no_thread_wakes_nothing(store: ThreadStore) -> None:
    with pytest.raises(ThreadNotFound):
        await store.append_inbound("th_none", _message())
    assert await store.runs.read("w", 10, 10) == []


async def test_a_request_id_of_an_earlier_version_is_found_through_the_index(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    assert await store.append_inbound("th_f", _message(), dedupe="m1", create=NEW)
    rid = await _pending_approval(store, "th_f")  # rq_1: names no thread
    assert thread_of_request(rid) is None
    assert await redis_client.hget(store.shared.request_thread(rid), rid) == b"th_f"
    assert [v.request.request_id for v in await store.pending_requests()] == [rid]
    record = await store.answer(rid, Approved(request_id=rid, channel="rest", responder="bo"))
    assert record.thread_id == "th_f"
    with pytest.raises(RequestNotFound):
        await store.answer("rq_2", Approved(request_id="rq_2", channel="rest", responder="bo"))
    other = request_id_for("th_f")
    with pytest.raises(RequestNotFound):  # names a thread that has no such request
        await store.answer(other, Approved(request_id=other, channel="rest", responder="bo"))


_PEOPLE = {"slack:U1": "alice", "rest:alice": "alice", "rest:bob": "bob"}
_RECORDS = [
    {"kind": "question"},
    {"kind": "question", "approvers": ["slack:U9"]},
    {"kind": "approval"},
    {"kind": "approval", "approvers": ["rest:*"]},
    {"kind": "approval", "approvers": ["rest:bob", "slack:U1"], "people": _PEOPLE},
    {"kind": "approval", "approvers": ["rest"]},
    {"kind": "approval", "approvers": ["rest:*"], "requester": "alice", "people": _PEOPLE},
    {
        "kind": "approval",
        "approvers": ["rest:*", "slack:U1"],
        "requester": "alice",
        "self_approval": False,
        "people": _PEOPLE,
    },
    {"kind": "approval", "requester": "rest:carol", "self_approval": False},
]
_RESPONDERS = [("rest", "alice"), ("rest", "bob"), ("rest", "carol"), ("slack", "U1"), ("rest", "")]


@pytest.mark.parametrize("fields", _RECORDS)
async def test_the_answer_script_allows_whom_the_record_allows(
    store: ThreadStore, fields: dict[str, Any]
) -> None:
    """The script applies RequestRecord.may_answer itself (scripts.ANSWER): both agree on
    every responder, and an approval is stamped with the approver as a person."""
    for n, (channel, responder) in enumerate(_RESPONDERS):
        tid = f"th_rules{n}"
        assert await store.append_inbound(tid, _message(), create=NEW)
        lease = await store.acquire(tid, "w", 5_000)
        assert lease is not None
        record = RequestRecord(request_id=request_id_for(tid), thread_id=tid, text="ok?", **fields)
        await store.commit(lease, ttl_ms=5_000, requests=[record], release=True)
        rid = record.request_id
        response: Approved | Answered = (
            Answered(request_id=rid, channel=channel, responder=responder, answer="yes")
            if record.kind == "question"
            else Approved(request_id=rid, channel=channel, responder=responder)
        )
        allowed = record.may_answer(channel, responder)
        if allowed:
            await store.answer(rid, response)
            stored = (await store.request(rid)).response
            if isinstance(response, Approved):
                assert stored == response.model_copy(
                    update={"person": record.person(channel, responder)}
                )
        else:
            with pytest.raises(NotAllowed):
                await store.answer(rid, response)
            assert (await store.request(rid)).status == "pending"
            await store.answer(rid, response, check=False)  # the channel checked it
        assert (await store.request(rid)).status == "answered", (fields, channel, responder)


async def test_the_answer_script_binds_the_approval_to_the_arguments_asked(
    store: ThreadStore,
) -> None:
    assert await store.append_inbound("th_h", _message(), create=NEW)
    lease = await store.acquire("th_h", "w", 5_000)
    assert lease is not None
    asked = arguments_hash({"tag": "v1"})
    record = RequestRecord(
        request_id=request_id_for("th_h"),
        thread_id="th_h",
        kind="approval",
        text="ok?",
        arguments_hash=asked,
        grants=["thread"],
    )
    await store.commit(lease, ttl_ms=5_000, requests=[record], release=True)
    rid = record.request_id
    other = arguments_hash({"tag": "v2"})
    with pytest.raises(ArgumentsChanged) as refused:
        await store.answer(
            rid, Approved(request_id=rid, channel="rest", responder="bo", arguments_hash=other)
        )
    assert (refused.value.expected, refused.value.given) == (asked, other)
    await store.answer(
        rid, Approved(request_id=rid, channel="rest", responder="bo", grant="thread")
    )
    stored = (await store.request(rid)).response
    assert isinstance(stored, Approved)
    assert (stored.arguments_hash, stored.person, stored.grant) == (asked, "rest:bo", "thread")


async def test_a_trim_keeps_what_a_consumer_still_needs(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    """Entries pending (a run under way, or a dead worker's) and entries nobody has read
    stay; only those before both go."""
    key = store.runs.key_of("th_t")
    for n in range(4):
        await redis_client.xadd(key, {"t": "th_t", "n": str(n)})
    first, second = await store.runs.read("w", 2, 100)  # two delivered, two not yet
    await redis_client.xack(key, store.runs.group, first.entry_id)
    store.runs.acked_in_commit(first)
    assert await store.runs.trim() == 1  # the first: before the oldest pending
    assert await store.runs.trim() == 0  # nothing marked since
    await redis_client.xack(key, store.runs.group, second.entry_id)
    store.runs.acked_in_commit(second)
    assert await store.runs.trim() == 1  # none pending: up to the last delivered
    rest = await store.runs.read("w", 10, 100)
    assert [e.fields["n"] for e in rest] == ["2", "3"]  # the unread ones are all there
