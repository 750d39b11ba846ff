"""The store's guarantees, against a real Redis: dedupe, fencing, one answer per request."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from model.events import Approved, HumanResponse, SystemNote, UserMessage
from model.records import Origin, RequestRecord
from store import keys
from store.errors import (
    LeaseLost,
    NotAllowed,
    QuestionAsked,
    RequestAlreadyAnswered,
    RequestNotFound,
    ThreadNotFound,
)
from store.threads import NewThread, ThreadStore

NEW = NewThread(agent="deploybot", origin=Origin(channel="rest", address="alice"))


def _msg(text: str, mid: str | None = None) -> UserMessage:
    return UserMessage(channel="rest", sender="alice", text=text, message_id=mid)


async def test_duplicate_delivery_is_stored_once(store: ThreadStore) -> None:
    assert await store.append_inbound("t1", _msg("hi", "m1"), dedupe="m1", create=NEW)
    assert not await store.append_inbound("t1", _msg("hi", "m1"), dedupe="m1", create=NEW)
    assert await store.append_inbound("t1", _msg("again", "m2"), dedupe="m2")
    view = await store.thread("t1")
    assert [e.text for e in view.inbox] == ["hi", "again"]  # type: ignore[union-attr]


async def test_message_to_unknown_thread_is_refused(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    with pytest.raises(ThreadNotFound):
        await store.append_inbound("nope", _msg("hi"))
    assert await redis_client.exists(*keys.thread_keys("nope")) == 0


async def test_lease_is_exclusive_until_it_runs_out(store: ThreadStore) -> None:
    await store.append_inbound("t1", _msg("hi"), create=NEW)
    first = await store.acquire("t1", "w1", ttl_ms=10_000)
    assert first is not None
    assert [e.type for e in first.events] == ["user_message"]  # the inbox, merged on acquiring
    assert await store.acquire("t1", "w2", ttl_ms=10_000) is None


async def test_stale_lease_holder_cannot_append(store: ThreadStore) -> None:
    await store.append_inbound("t1", _msg("hi"), create=NEW)
    stale = await store.acquire("t1", "w1", ttl_ms=50)
    assert stale is not None
    await asyncio.sleep(0.1)
    fresh = await store.acquire("t1", "w2", ttl_ms=10_000)
    assert fresh is not None
    assert fresh.token > stale.token

    with pytest.raises(LeaseLost):
        await store.commit(
            stale,
            ttl_ms=1000,
            events=[SystemNote(kind="timeout", text="zombie")],
            state={"status": "done"},
            ledger={"c1": "started"},
        )
    view = await store.thread("t1")
    assert [e.type for e in view.events] == ["user_message"]
    assert view.state.status == "running"  # the fresh holder's, not the zombie's "done"
    assert view.state.lease_owner == "w2"
    await store.commit(fresh, ttl_ms=1000, events=[SystemNote(kind="timeout", text="ok")])
    assert len((await store.thread("t1")).events) == 2


async def test_release_waits_for_input_that_arrived(store: ThreadStore) -> None:
    await store.append_inbound("t1", _msg("one"), create=NEW)
    lease = await store.acquire("t1", "w1", ttl_ms=10_000)
    assert lease is not None
    await store.append_inbound("t1", _msg("two"))
    result = await store.commit(lease, ttl_ms=10_000, release=True)
    assert not result.released
    assert [e.text for e in result.merged] == ["two"]  # type: ignore[union-attr]
    assert (await store.thread("t1")).state.lease_owner == "w1"
    result = await store.commit(lease, ttl_ms=10_000, release=True)
    assert result.released


async def _pending_approval(store: ThreadStore) -> RequestRecord:
    await store.append_inbound("t1", _msg("deploy"), create=NEW)
    lease = await store.acquire("t1", "w1", ttl_ms=10_000)
    assert lease is not None
    record = RequestRecord(
        request_id="rq_1",
        thread_id="t1",
        kind="approval",
        text="Approve?",
        tool="deploy",
        arguments={"tag": "v1"},
        call_id="c1",
        approvers=["slack:U1", "sms:+15550001111"],
    )
    await store.commit(lease, ttl_ms=10_000, requests=[record], release=True)
    return record


def _decision(responder: str, channel: str = "slack") -> HumanResponse:
    return Approved(
        request_id="rq_1",
        channel=channel,
        responder=responder,
    )


async def test_an_approval_binds_once(store: ThreadStore) -> None:
    await _pending_approval(store)
    assert [v.request.request_id for v in await store.pending_requests()] == ["rq_1"]
    await store.answer("rq_1", _decision("U1"))
    with pytest.raises(RequestAlreadyAnswered):
        await store.answer("rq_1", _decision("U1"))
    assert await store.pending_requests() == []
    inbox = (await store.thread("t1")).inbox
    assert len(inbox) == 1


async def test_unauthorized_approver_changes_nothing(store: ThreadStore) -> None:
    await _pending_approval(store)
    with pytest.raises(NotAllowed):
        await store.answer("rq_1", _decision("U2"))
    with pytest.raises(NotAllowed):
        await store.answer("rq_1", _decision("U1", channel="email"))
    view = await store.thread("t1")
    assert view.inbox == []
    assert [r.status for r in view.requests] == ["pending"]


async def test_unknown_request(store: ThreadStore) -> None:
    with pytest.raises(RequestNotFound):
        await store.answer("rq_nope", _decision("U1"))


def test_thread_keys_share_one_cluster_slot() -> None:
    slots = {key_slot(k.encode()) for k in keys.thread_keys("th_abc")}
    assert len(slots) == 1
    assert all("{th_abc}" in k for k in keys.thread_keys("th_abc"))
    assert key_slot(keys.OUTBOX.encode()) == key_slot(keys.OUTBOX_RETRY.encode())


async def test_only_the_append_that_starts_a_thread_reports_a_new_thread(
    store: ThreadStore, caplog: pytest.LogCaptureFixture
) -> None:
    # A channel passes create= with every message that may start a thread (each DM, each
    # mail): the second one joins the thread and must not be logged or counted as new.
    caplog.set_level(logging.INFO, logger="switchboard.inbound")
    assert await store.append_inbound("t9", _msg("first"), create=NEW)
    assert await store.append_inbound("t9", _msg("second"), create=NEW)
    lines = [r.getMessage() for r in caplog.records if r.name == "switchboard.inbound"]
    assert lines == ["thread created for deploybot from rest:alice", "user_message stored"]


@pytest.mark.parametrize("asked", ["question", "call"])
async def test_an_unasked_append_stores_nothing_on_a_thread_that_asked(
    store: ThreadStore, redis_client: aioredis.Redis, asked: str
) -> None:
    # unasked: the message is stored only where it cannot be an answer; a thread that asked
    # a question, or started a call (a handoff's child may ask), gets it back untouched.
    assert await store.append_inbound(
        "t1", _msg("deploy", "m1"), dedupe="m1", create=NEW, unasked=True
    )
    with pytest.raises(ThreadNotFound):
        await store.append_inbound("nope", _msg("hi"), unasked=True)
    lease = await store.acquire("t1", "w1", ttl_ms=10_000)
    assert lease is not None
    if asked == "question":
        record = RequestRecord(request_id="rq_q", thread_id="t1", kind="question", text="Which?")
        await store.commit(lease, ttl_ms=10_000, requests=[record], release=True)
    else:
        await store.commit(lease, ttl_ms=10_000, release=True)
        await redis_client.hset(keys.calls("t1"), "c1", '{"tool": "wait"}')
    with pytest.raises(QuestionAsked):
        await store.append_inbound("t1", _msg("v1", "m2"), dedupe="m2", create=NEW, unasked=True)
    assert (await store.thread("t1")).inbox == []
    assert await store.append_inbound("t1", _msg("v1", "m2"), dedupe="m2")  # not seen before
