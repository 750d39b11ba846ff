"""What a request's stored form leaves out, and how it reads back whole: an approval's text
where it is its call's, its creation time as milliseconds, and, once answered, its call's
id and hash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from pydantic_core import from_json

from model.events import ApprovalRequest, Approved, Rejected, UserMessage, arguments_hash
from model.records import OutboxItem, RequestRecord, approval_text, call_text
from store import keys
from store.errors import NotAllowed
from store.threads import ThreadStore
from tests.test_store import NEW

CALL = {"tag": "v1.2.3", "env": "production"}
ASKED = RequestRecord(
    request_id="rq_1",
    thread_id="t1",
    kind="approval",
    text=approval_text(call_text("deploy", CALL)),
    tool="deploy",
    arguments=CALL,
    call_id="c1",
    approvers=["rest:*"],
    arguments_hash=arguments_hash(CALL),
    requester="rest:alice",
    created=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
)
ASKED_HASH = arguments_hash(CALL).encode()


def test_an_approval_that_says_its_call_is_stored_without_its_text() -> None:
    stored = ASKED.stored()
    assert b"Approval needed" not in stored
    assert b'"created":1767323045678' in stored  # milliseconds, not ISO 8601
    assert stored.endswith(b',"call_id":"c1","arguments_hash":"' + ASKED_HASH + b'"}')
    assert RequestRecord.load(stored, request_id="rq_1", thread_id="t1") == ASKED
    # A tool's note makes it say more than its call: kept.
    noted = ASKED.model_copy(update={"text": ASKED.text + "\nDeploys are logged."})
    assert b"Deploys are logged" in noted.stored()
    assert RequestRecord.load(noted.stored(), request_id="rq_1", thread_id="t1") == noted
    question = RequestRecord(request_id="rq_2", thread_id="t1", kind="question", text="Which?")
    assert RequestRecord.load(question.stored(), request_id="rq_2", thread_id="t1") == question


def test_an_item_is_stored_with_its_creation_time_in_milliseconds() -> None:
    item = OutboxItem(
        outbox_id="o",
        thread_id="t",
        kind="final",
        text="done",
        to=NEW.origin,
        created=ASKED.created,
    )
    assert b'"created":1767323045678' in item.stored()
    assert OutboxItem.load(item.stored(), outbox_id="o", thread_id="t") == item


async def _asked(store: ThreadStore, record: RequestRecord) -> None:
    await store.append_inbound("t1", UserMessage(channel="rest", sender="a", text="x"), create=NEW)
    lease = await store.acquire("t1", "w1", ttl_ms=10_000)
    assert lease is not None
    event = ApprovalRequest(
        request_id=record.request_id,
        text=record.text,
        tool="deploy",
        arguments=CALL,
        call_id="c1",
    )
    await store.commit(lease, ttl_ms=10_000, events=[event], requests=[record], release=True)


async def test_an_answer_cuts_the_calls_id_and_hash_off_its_request_and_readers_find_them(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await _asked(store, ASKED)
    answer = Approved(request_id="rq_1", channel="rest", responder="alice")
    assert await store.answer("rq_1", answer) == ASKED  # the record it answered, whole
    stored = await redis_client.hget(keys.requests("t1"), "rq_1")
    assert stored is not None
    assert b"arguments_hash" not in stored
    assert b"call_id" not in stored
    assert from_json(stored)["arguments"] == CALL  # what the hash is of
    view = await store.request("rq_1")  # with the log: the call id is its approval_request's
    assert (view.request, view.status) == (ASKED, "answered")
    assert [r.request for r in (await store.thread("t1")).requests] == [ASKED]
    # A reader that reads no log (routing, the open question) has all but the call id.
    (bare,) = await store.request_views([("rq_1", "t1")])
    assert bare.request == ASKED.model_copy(update={"call_id": None})
    # The approval still carries the hash it bound to.
    assert isinstance(view.response, Approved)
    assert view.response.arguments_hash == ASKED.arguments_hash


async def test_a_rejection_cuts_it_too_and_a_refused_answer_cuts_nothing(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    record = ASKED.model_copy(update={"approvers": ["rest:bob"]})
    await _asked(store, record)
    before = await redis_client.hget(keys.requests("t1"), "rq_1")
    with pytest.raises(NotAllowed):
        await store.answer("rq_1", Approved(request_id="rq_1", channel="rest", responder="eve"))
    assert await redis_client.hget(keys.requests("t1"), "rq_1") == before
    await store.answer("rq_1", Rejected(request_id="rq_1", channel="rest", responder="bob"))
    stored = await redis_client.hget(keys.requests("t1"), "rq_1")
    assert stored is not None
    assert b"arguments_hash" not in stored
    assert (await store.request("rq_1")).request == record
