"""Outbox delivery: retries with backoff, permanent failures on the thread, no blind resends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from agent.delivery import SendFailed
from agent.llm import OpenAILLM
from agent.outbox import OutboxDispatcher, OutboxSettings
from channels.rest.sender import RestSender
from model.events import DeliveryFailed, UserMessage
from model.records import Delivery, Origin, OutboxItem
from store import keys
from store.outbox import OutboxStore
from store.threads import NewThread, ThreadStore
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step


class FlakySender:
    """A channel whose provider fails a few times before it accepts."""

    channel = "rest"
    resend_when_unknown = True

    def __init__(self, failures: list[SendFailed]) -> None:
        self.failures = failures
        self.delivered: list[str] = []
        self.attempts = 0

    async def send(self, item: OutboxItem) -> Delivery:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(item.outbox_id)
        return Delivery(provider_id=f"p-{item.outbox_id}")


async def _launch(service: Service, fake_llm: FakeOpenAI, text: str = "hello") -> str:
    fake_llm.script(step("done_for_now", message="hi there"))
    r = await service.api.post("/v1/threads", json={"message": text})
    return str(r.json()["thread_id"])


async def test_transient_failures_are_retried_then_sent_once(
    service_factory: Callable[..., Awaitable[Service]], llm: OpenAILLM, fake_llm: FakeOpenAI
) -> None:
    sender = FlakySender(
        [
            SendFailed("HTTP 503", transient=True),
            SendFailed("rate limited", transient=True, retry_after=0.05),
        ]
    )
    service = await service_factory(llm, senders={"rest": sender})
    tid = await _launch(service, fake_llm)
    view = await service.settled(tid, "done")
    assert sender.attempts == 3
    assert len(sender.delivered) == 1
    out = view.outbox[0]
    assert (out.status, out.attempts, out.provider_id) == ("sent", 3, f"p-{out.item.outbox_id}")


async def test_permanent_failure_is_recorded_on_the_thread(
    service_factory: Callable[..., Awaitable[Service]], llm: OpenAILLM, fake_llm: FakeOpenAI
) -> None:
    sender = FlakySender([SendFailed("channel_not_found", transient=False)])
    service = await service_factory(llm, senders={"rest": sender})
    tid = await _launch(service, fake_llm)

    def failed(v: object) -> bool:
        return any(o.status == "failed" for o in v.outbox)  # type: ignore[attr-defined]

    view = await service.wait(tid, failed)
    assert view.outbox[0].error == "channel_not_found"
    failures = [e for e in view.inbox + view.events if isinstance(e, DeliveryFailed)]
    assert [f.reason for f in failures] == ["channel_not_found"]


async def _committed_item(store: ThreadStore, thread_id: str, outbox_id: str) -> OutboxItem:
    """A thread with one final message in its outbox, committed (and handed to the senders,
    or to the store's ``direct`` dispatcher when one is set)."""
    origin = Origin(channel="rest", address="a")
    await store.append_inbound(
        thread_id,
        UserMessage(channel="rest", sender="a", text="x"),
        create=NewThread(agent="deploybot", origin=origin),
    )
    lease = await store.acquire(thread_id, "w", 10_000)
    assert lease is not None
    item = OutboxItem(outbox_id=outbox_id, thread_id=thread_id, kind="final", text="hi", to=origin)
    await store.commit(lease, ttl_ms=10_000, outbox=[item], release=True)
    return item


async def test_interrupted_send_is_not_repeated_where_unsafe(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await _committed_item(store, "t1", "o1")
    outbox = OutboxStore(redis_client)
    # A sender claimed it and died mid-call: the claim runs out with the outcome unknown.
    assert await outbox.claim("t1", "o1", claim_ms=1) is not None

    class NoRepeat(RestSender):
        resend_when_unknown = False

    sender = NoRepeat()
    dispatcher = OutboxDispatcher(
        store.outbox_stream, outbox, {"rest": sender}, name="t", settings=OutboxSettings(claim_ms=1)
    )
    await asyncio.sleep(0.01)
    await dispatcher.deliver_item("t1", "o1")
    view = await store.thread("t1")
    assert view.outbox[0].status == "unknown"
    assert await redis_client.get(keys.ref("rest", "o1")) is None


async def test_delivery_settles_and_acknowledges_without_script_checks(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    await _committed_item(store, "t2", "o2")
    outbox = OutboxStore(redis_client)
    await outbox.setup()
    await redis_client.config_resetstat()
    dispatcher = OutboxDispatcher(store.outbox_stream, outbox, {"rest": RestSender()}, name="t")
    [entry] = await store.outbox_stream.read("t", 10, block_ms=100)
    await dispatcher.deliver(entry)
    stats: Any = await redis_client.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    assert "script|exists" not in calls
    # claim, then settle + refs + ack in one pipeline: the ack rides with the settle
    assert calls["evalsha"] == 2
    assert calls["xack"] == 1
    assert (await store.thread("t2")).outbox[0].status == "sent"
    assert await redis_client.xlen(keys.OUTBOX) == 0


async def test_a_reply_can_find_a_mapped_delivery_and_rest_writes_no_reference(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    class Mapped(RestSender):
        """A channel whose replies name the message's id (as Slack's ts, a Message-ID)."""

        async def send(self, item: OutboxItem) -> Delivery:
            return Delivery(provider_id=f"p-{item.outbox_id}", refs=[f"q-{item.outbox_id}"])

    outbox = OutboxStore(redis_client)
    await outbox.setup()
    for thread_id, outbox_id, sender in (("t5", "o5", Mapped()), ("t6", "o6", RestSender())):
        await _committed_item(store, thread_id, outbox_id)
        dispatcher = OutboxDispatcher(store.outbox_stream, outbox, {"rest": sender}, name="t")
        [entry] = await store.outbox_stream.read("t", 10, block_ms=100)
        await dispatcher.deliver(entry)
    for provider_id in ("p-o5", "q-o5"):
        found = await outbox.lookup_ref("rest", provider_id)
        assert found is not None
        assert (found.thread_id, found.outbox_id) == ("t5", "o5")
    # REST: answered by request id, never by a message's id; its delivery is still recorded.
    assert await redis_client.keys("sb:ref:rest:o6*") == []
    view = await store.thread("t6")
    assert (view.outbox[0].status, view.outbox[0].provider_id) == ("sent", "o6")
