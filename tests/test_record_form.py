"""The stored form of requests and outbox items: compact today, and every earlier form still
reads back as the same record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from agent.outbox import OutboxDispatcher
from channels.rest.sender import RestSender
from model.events import Approved, UserMessage
from model.records import ApprovalBrief, Delivery, Origin, OutboxItem, RequestRecord
from store import keys
from store.outbox import OutboxStore
from store.threads import NewThread, ThreadStore
from tests.test_outbox import _committed_item
from tests.test_store import _pending_approval

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
MS = timedelta(milliseconds=1)

RECORD = RequestRecord(
    request_id="rq_a_th_a",
    thread_id="th_a",
    kind="approval",
    text="Approval needed: deploy(tag='v1.2.3')",
    tool="deploy",
    arguments={"tag": "v1.2.3"},
    call_id="call_a",
    approvers=["rest:*"],
    requester="rest:bench",
    created=AT,
)
ITEM = OutboxItem(
    outbox_id="out_a",
    thread_id="th_a",
    kind="approval",
    text="Approval needed: deploy(tag='v1.2.3')",
    to=Origin(channel="rest", address="bench"),
    request_id="rq_a_th_a",
    tool="deploy",
    arguments={"tag": "v1.2.3"},
    created=AT,
    brief=ApprovalBrief(agent="deploybot", requester="rest:bench", said="deploy"),
)

# As 0.3 stored them: the ids the key and the field name say, repeated in the value.
OLD_RECORD = (
    '{"request_id":"rq_a_th_a","thread_id":"th_a","kind":"approval",'
    '"text":"Approval needed: deploy(tag=\'v1.2.3\')","tool":"deploy",'
    '"arguments":{"tag":"v1.2.3"},"call_id":"call_a","approvers":["rest:*"],'
    '"requester":"rest:bench","created":"2026-01-02T03:04:05.678000Z"}'
)
OLD_ITEM = (
    '{"outbox_id":"out_a","thread_id":"th_a","kind":"approval",'
    '"text":"Approval needed: deploy(tag=\'v1.2.3\')","to":{"channel":"rest","address":"bench"},'
    '"request_id":"rq_a_th_a","tool":"deploy","arguments":{"tag":"v1.2.3"},'
    '"created":"2026-01-02T03:04:05.678000Z",'
    '"brief":{"agent":"deploybot","requester":"rest:bench","said":"deploy"}}'
)


def test_a_request_is_stored_without_the_ids_its_place_names() -> None:
    stored = RECORD.stored()
    assert b"rq_a_th_a" not in stored
    assert b'"thread_id"' not in stored
    assert RequestRecord.load(stored, request_id="rq_a_th_a", thread_id="th_a") == RECORD


def test_a_request_stored_by_earlier_versions_reads_back_the_same() -> None:
    assert RequestRecord.load(OLD_RECORD, request_id="rq_a_th_a", thread_id="th_a") == RECORD


def test_an_outbox_item_is_stored_without_the_ids_its_place_names() -> None:
    stored = ITEM.stored()
    assert b"out_a" not in stored
    assert b'"thread_id"' not in stored
    assert OutboxItem.load(stored, outbox_id="out_a", thread_id="th_a") == ITEM


def test_an_outbox_item_stored_by_earlier_versions_reads_back_the_same() -> None:
    assert OutboxItem.load(OLD_ITEM, outbox_id="out_a", thread_id="th_a") == ITEM


async def test_a_delivery_under_the_items_own_id_stores_no_provider_id(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    outbox = OutboxStore(redis_client)
    await outbox.setup()
    await _committed_item(store, "t7", "o7")
    dispatcher = OutboxDispatcher(store.outbox_stream, outbox, {"rest": RestSender()}, name="t")
    [entry] = await store.outbox_stream.read("t", 10, block_ms=100)
    await dispatcher.deliver(entry)
    assert await redis_client.hkeys(keys.outbox("t7")) == [b"o7:s"]  # the item is beside
    assert await redis_client.hexists(keys.requests("t7"), keys.outbox_body("o7"))
    assert (await store.thread("t7")).outbox[0].provider_id == "o7"
    # A failure reported later keeps the id the item was sent under.
    assert await outbox.report_failure("t7", "o7", "bounced")
    [view] = (await store.thread("t7")).outbox
    assert (view.status, view.provider_id, view.error) == ("failed", "o7", "bounced")


async def test_a_sent_item_stored_with_its_provider_id_reads_back_the_same(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await _committed_item(store, "t8", "o8")
    await redis_client.hset(keys.outbox("t8"), mapping={"o8:s": "sent", "o8:p": "o8"})
    assert (await store.thread("t8")).outbox[0].provider_id == "o8"


REQUEST = RequestRecord(
    request_id="rq_a_th_a",
    thread_id="th_a",
    kind="approval",
    text=ITEM.text,
    tool="deploy",
    arguments={"tag": "v1.2.3"},
    call_id="call_a",
    requester="rest:bench",
    created=AT,
)


def test_an_approvals_first_offer_is_stored_without_what_its_request_says() -> None:
    stored = ITEM.stored(REQUEST)
    # (the recipient is rest:bench too, kept as its target: the requester is what goes)
    for repeated in (b"Approval needed", b'"tool"', b'"arguments"', b'"requester"'):
        assert repeated not in stored
    requests = {REQUEST.request_id: REQUEST.stored()}
    loaded = OutboxItem.load(stored, outbox_id="out_a", thread_id="th_a", requests=requests)
    assert loaded == ITEM


def test_an_item_that_says_other_than_its_request_is_stored_whole() -> None:
    reminder = ITEM.model_copy(update={"text": "Reminder: " + ITEM.text})
    assert reminder.stored(REQUEST) == reminder.stored()
    other = ITEM.model_copy(update={"brief": ITEM.brief.model_copy(update={"requester": "x"})})  # type: ignore[union-attr]
    assert other.stored(REQUEST) == other.stored()


async def test_an_approval_offered_through_the_stream_is_sent_in_its_requests_words(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await _committed_item(store, "t9", "o9")  # the thread, then its approval and first offer
    lease = await store.acquire("t9", "w", 10_000)
    assert lease is not None
    request = REQUEST.model_copy(update={"request_id": "rq_9_t9", "thread_id": "t9"})
    item = ITEM.model_copy(update={"outbox_id": "o10", "thread_id": "t9", "request_id": "rq_9_t9"})
    await store.commit(lease, ttl_ms=10_000, requests=[request], outbox=[item], release=True)
    stored = await redis_client.hget(keys.requests("t9"), keys.outbox_body("o10"))
    assert stored is not None
    assert b"Approval needed" not in stored
    outbox = OutboxStore(redis_client)
    await outbox.setup()
    sent: list[OutboxItem] = []

    class Keeping(RestSender):
        async def send(self, it: OutboxItem) -> Delivery:
            sent.append(it)
            return await super().send(it)

    dispatcher = OutboxDispatcher(store.outbox_stream, outbox, {"rest": Keeping()}, name="t")
    for entry in await store.outbox_stream.read("t", 10, block_ms=100):
        await dispatcher.deliver(entry)
    assert [s for s in sent if s.outbox_id == "o10"] == [item]
    assert [o.item for o in (await store.thread("t9")).outbox if o.item.outbox_id == "o10"] == [
        item
    ]
    assert await outbox.report_failure("t9", "o10", "bounced")


async def test_an_answer_is_not_kept_beside_its_request_and_reads_back_from_the_log(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await _pending_approval(store)
    await store.answer("rq_1", Approved(request_id="rq_1", channel="slack", responder="U1"))
    assert await redis_client.hget(keys.requests("t1"), "rq_1:answer") is None
    # Before a worker merges it the answer is in the inbox, and after, in the log.
    response = (await store.request("rq_1")).response
    assert isinstance(response, Approved)
    assert (response.request_id, response.person) == ("rq_1", "slack:U1")
    view = await store.thread("t1")
    assert [r.response for r in view.requests] == [response]
    assert (await store.request("rq_1")).approvals_given == 1
    # Without asking for answers (routing, the open question) no log is read.
    (bare,) = await store.request_views([("rq_1", "t1")])
    assert (bare.status, bare.response) == ("answered", None)


async def test_an_answer_an_earlier_version_kept_beside_its_request_reads_back_whole(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await _pending_approval(store)
    await store.answer("rq_1", Approved(request_id="rq_1", channel="slack", responder="U1"))
    response = (await store.request("rq_1")).response
    assert isinstance(response, Approved)
    await redis_client.delete(keys.inbox("t1"))  # only the field can tell it now
    assert (await store.request("rq_1")).response is None
    # As the previous version kept it: the event without the request id the field names.
    kept = (
        b'{"at":1767323045678,"channel":"slack","responder":"U1","type":"approved",'
        b'"person":"slack:U1"}'
    )
    await redis_client.hset(keys.requests("t1"), "rq_1:answer", kept)
    expected = response.model_copy(update={"at": AT})
    assert (await store.request("rq_1")).response == expected
    assert [r.response for r in (await store.thread("t1")).requests] == [expected]
    # As 0.3 kept it: the event whole, request id and all.
    earlier = (
        b'{"at":"2026-01-02T03:04:05.678000Z","request_id":"rq_1",' + kept[kept.index(b'"c') :]
    )
    await redis_client.hset(keys.requests("t1"), "rq_1:answer", earlier)
    assert (await store.request("rq_1")).response == expected


async def test_a_threads_creation_time_is_kept_in_milliseconds_and_reads_back_in_any_form(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    first = UserMessage(channel="rest", sender="a", text="x")
    origin = Origin(channel="rest", address="a")
    await store.append_inbound("t11", first, create=NewThread(agent="deploybot", origin=origin))
    since = first.at - datetime(1970, 1, 1, tzinfo=UTC)
    assert await redis_client.hget(keys.meta("t11"), "created") == b"%d" % (since // MS)
    assert (await store.thread("t11")).meta.created == first.at
    # As 0.3 kept it (ISO 8601, microseconds and offset).
    await redis_client.hset(keys.meta("t11"), "created", first.at.isoformat())
    assert (await store.thread("t11")).meta.created == first.at


async def test_an_item_an_earlier_version_kept_in_the_outbox_hash_is_claimed_sent_and_read(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    """As the previous version stored an item: its JSON in the outbox hash at its id, a
    pending status beside it."""
    item = await _committed_item(store, "t12", "o12")
    body = await redis_client.hget(keys.requests("t12"), keys.outbox_body("o12"))
    assert body is not None
    await redis_client.hdel(keys.requests("t12"), keys.outbox_body("o12"))
    await redis_client.hset(keys.outbox("t12"), mapping={"o12": body, "o12:s": "pending"})
    assert [o.item for o in (await store.thread("t12")).outbox] == [item]
    outbox = OutboxStore(redis_client)
    await outbox.setup()
    dispatcher = OutboxDispatcher(store.outbox_stream, outbox, {"rest": RestSender()}, name="t")
    [entry] = await store.outbox_stream.read("t", 10, block_ms=100)
    await dispatcher.deliver(entry)
    [view] = (await store.thread("t12")).outbox
    assert (view.item, view.status, view.attempts, view.provider_id) == (item, "sent", 1, "o12")
    assert await outbox.record_status("t12", "o12", "delivered")
    assert await outbox.report_failure("t12", "o12", "bounced")
    [view] = (await store.thread("t12")).outbox
    assert (view.status, view.reported, view.error) == ("failed", ["delivered"], "bounced")


async def test_a_new_item_is_known_to_status_callbacks_and_failure_reports(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await _committed_item(store, "t13", "o13")
    outbox = OutboxStore(redis_client)
    assert await outbox.record_status("t13", "o13", "queued")
    assert not await outbox.record_status("t13", "nope", "queued")
    assert not await outbox.report_failure("t13", "nope", "bounced")
    assert await outbox.report_failure("t13", "o13", "bounced")


async def test_a_plain_origin_is_kept_as_its_target_and_one_in_json_reads_back_the_same(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    plain = Origin(channel="rest", address="a:b")
    routed = Origin(channel="slack", address="C1", route={"thread_ts": "1.2"})
    for tid, origin in (("t14", plain), ("t15", routed)):
        first = UserMessage(channel=origin.channel, sender="a", text="x")
        await store.append_inbound(tid, first, create=NewThread(agent="deploybot", origin=origin))
        assert (await store.thread(tid)).meta.origin == origin
    assert await redis_client.hget(keys.meta("t14"), "origin") == b"rest:a:b"
    assert (await redis_client.hget(keys.meta("t15"), "origin") or b"").startswith(b"{")
    # As an earlier version kept every origin: its JSON.
    await redis_client.hset(keys.meta("t14"), "origin", plain.model_dump_json())
    assert (await store.thread("t14")).meta.origin == plain


def test_an_item_to_a_plain_recipient_names_it_by_its_target_and_reads_back_in_any_form() -> None:
    final = OutboxItem(
        outbox_id="o", thread_id="t", kind="final", text="done", to=ITEM.to, created=AT
    )
    stored = final.stored()
    assert b'"to":"rest:bench"' in stored
    assert OutboxItem.load(stored, outbox_id="o", thread_id="t") == final
    routed = final.model_copy(
        update={"to": Origin(channel="slack", address="C1", route={"a": "b"})}
    )
    assert b'"to":{' in routed.stored()
    assert OutboxItem.load(routed.stored(), outbox_id="o", thread_id="t") == routed
    # As an earlier version kept every recipient: an object.
    earlier = b'{"kind":"final","text":"done","to":{"channel":"rest","address":"bench"},'
    earlier += b'"created":"2026-01-02T03:04:05.678000Z"}'
    assert OutboxItem.load(earlier, outbox_id="o", thread_id="t") == final
