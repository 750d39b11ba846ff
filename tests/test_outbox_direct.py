"""Outbox items a worker's commit hands to its own process's dispatcher: claimed in the
commit, sent and settled in one round trip, and recovered by another process when theirs
died before settling them (store.outbox)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from agent.delivery import SendFailed
from agent.outbox import OutboxDispatcher, OutboxSettings
from model.events import DeliveryFailed
from model.records import Delivery, OutboxItem
from store import keys
from store.outbox import OutboxStore
from store.streams import Entry
from store.threads import ThreadStore
from tests.test_outbox import _committed_item


class Died:
    """The dispatcher of a process that dies right after its commit: takes, never sends."""

    def __init__(self, claim_ms: int) -> None:
        self.claim_ms = claim_ms
        self.taken: list[OutboxItem] = []

    def accepting(self) -> bool:
        return True

    def take(self, items: Sequence[OutboxItem]) -> None:
        self.taken += items


class Recording:
    """A channel that records what it sends; fails with the errors it is given first."""

    channel = "rest"

    def __init__(self, *, resend: bool = True, failures: Sequence[SendFailed] = ()) -> None:
        self.resend_when_unknown = resend
        self.failures = list(failures)
        self.sent: list[str] = []
        # Sends wait for it: a test that counts the settle's commands opens it once it has
        # reset the server's statistics (the handed item's task may run before that).
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, item: OutboxItem) -> Delivery:
        await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(item.outbox_id)
        return Delivery(provider_id=f"p-{item.outbox_id}")


def _dispatcher(
    store: ThreadStore,
    client: aioredis.Redis,
    sender: Recording,
    claim_ms: int = 60_000,
    base_delay: float = 0.05,
) -> OutboxDispatcher:
    settings = OutboxSettings(
        claim_ms=claim_ms, block_ms=50, retry_poll_s=0.05, base_delay=base_delay
    )
    return OutboxDispatcher(
        store.outbox_stream, OutboxStore(client), {"rest": sender}, name="d", settings=settings
    )


@contextlib.asynccontextmanager
async def _running(dispatcher: OutboxDispatcher) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _until_settled(store: ThreadStore, thread_id: str, within: float = 10) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        status = (await store.thread(thread_id)).outbox[0].status
        if status not in ("pending", "sending"):
            return status
        assert loop.time() < deadline, f"still {status}"
        await asyncio.sleep(0.02)


async def _recovery(store: ThreadStore, client: aioredis.Redis, tid: str, oid: str) -> Any:
    return await client.zscore(store.shared.outbox_retry(tid), f"{tid}|{oid}")


async def test_a_commit_claims_its_new_items_for_its_own_dispatcher(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    died = Died(claim_ms=60_000)
    store.direct = died
    item = await _committed_item(store, "t1", "o1")
    assert died.taken == [item]
    out = (await store.thread("t1")).outbox[0]
    assert (out.status, out.attempts) == ("sending", 1)
    # No pointer on the stream; a recovery entry due when the claim runs out.
    assert await redis_client.xlen(store.shared.outbox("t1")) == 0
    due = await _recovery(store, redis_client, "t1", "o1")
    assert due is not None
    # The claim's deadline is in its status (keys.sending_until), beside no count.
    fields = await redis_client.hgetall(keys.outbox("t1"))
    [(field, status)] = fields.items()
    assert field == keys.outbox_field("o1", keys.OUTBOX_STATUS).encode()
    sending, _, until = status.decode().partition(":")
    assert sending == "sending"
    assert abs(int(until) - due) < 5_000  # server time on both, or this host's for the entry


async def test_a_handed_item_is_sent_and_settled_without_reads_or_stream_commands(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    sender = Recording()
    sender.gate.clear()
    dispatcher = _dispatcher(store, redis_client, sender)
    await dispatcher.store.setup()
    dispatcher.serve_direct()
    store.direct = dispatcher
    await _committed_item(store, "t2", "o2")
    await redis_client.config_resetstat()
    sender.gate.set()
    await dispatcher.settled()
    stats: Any = await redis_client.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    # The settle script, the ref and the recovery entry's removal: one pipeline.
    assert calls.pop("evalsha") == 1
    assert {c for c in calls if c.startswith("x")} == set()  # no stream read, ack or delete
    assert "hmget" not in calls  # no claim script
    assert sender.sent == ["o2"]
    out = (await store.thread("t2")).outbox[0]
    assert (out.status, out.attempts, out.provider_id) == ("sent", 1, "p-o2")
    assert await _recovery(store, redis_client, "t2", "o2") is None
    # The claim wrote no count (a first attempt's) and its deadline in the status, which
    # the settle writes over: it deletes nothing, and leaves no dead field.
    assert "hdel" not in calls
    fields = await redis_client.hgetall(keys.outbox("t2"))
    assert {k.decode(): v.decode() for k, v in fields.items()} == {"o2:p": "p-o2", "o2:s": "sent"}


async def test_an_item_whose_process_died_is_sent_by_another_once_its_claim_runs_out(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    store.direct = Died(claim_ms=1_000)
    await _committed_item(store, "t3", "o3")
    store.direct = None
    sender = Recording(resend=True)
    dispatcher = _dispatcher(store, redis_client, sender, claim_ms=1_000)
    assert await dispatcher.store.move_due() == 0  # the claim is live: nothing to recover
    async with _running(dispatcher):
        assert await _until_settled(store, "t3") == "sent"
    assert sender.sent == ["o3"]
    out = (await store.thread("t3")).outbox[0]
    assert out.attempts == 2  # the commit's claim, then the recovery's
    assert await _recovery(store, redis_client, "t3", "o3") is None


async def test_a_died_claim_is_not_sent_again_where_a_repeat_is_unsafe(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    store.direct = Died(claim_ms=200)
    await _committed_item(store, "t4", "o4")
    store.direct = None
    sender = Recording(resend=False)
    async with _running(_dispatcher(store, redis_client, sender, claim_ms=200)):
        assert await _until_settled(store, "t4") == "unknown"
    assert sender.sent == []
    view = await store.thread("t4")
    failures = [e for e in view.inbox + view.events if isinstance(e, DeliveryFailed)]
    assert [(f.outbox_id, f.outcome) for f in failures] == [("o4", "unknown")]  # rerouted


@pytest.mark.parametrize("earlier", [False, True])
async def test_a_pointer_meeting_a_live_claim_stays_pending(
    store: ThreadStore, redis_client: aioredis.Redis, earlier: bool
) -> None:
    store.direct = Died(claim_ms=60_000)
    await _committed_item(store, "t5", "o5")
    store.direct = None
    if earlier:  # as an earlier version's commit claimed it: its deadline in a field
        status = await redis_client.hget(keys.outbox("t5"), "o5:s")
        sending, _, until = (status or b"").decode().partition(":")
        await redis_client.hset(keys.outbox("t5"), mapping={"o5:s": sending, "o5:c": until})
    # A recovery entry moved early (a host clock ahead): the claim's holder may yet be dead.
    await store.outbox_stream.ensure_group()
    await store.outbox_stream.add({"t": "t5", "o": "o5"})
    sender = Recording()
    dispatcher = _dispatcher(store, redis_client, sender)
    entries: list[Entry] = []
    while not entries:  # with partitions (a cluster), each read returns what has answered
        entries = await store.outbox_stream.read("d", 10, block_ms=100)
    [entry] = entries
    await dispatcher.deliver(entry)
    assert sender.sent == []
    pending: Any = await redis_client.xpending(entry.key, keys.OUTBOX_GROUP)
    assert pending["pending"] == 1  # reclaimed once that claim has run out


async def test_a_dispatcher_that_is_not_running_gets_its_items_through_the_stream(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    store.direct = _dispatcher(store, redis_client, Recording())  # never started
    await _committed_item(store, "t6", "o6")
    assert (await store.thread("t6")).outbox[0].status == "pending"
    assert await redis_client.xlen(store.shared.outbox("t6")) == 1
    assert await _recovery(store, redis_client, "t6", "o6") is None


async def test_a_handed_item_that_fails_is_retried_and_its_recovery_entry_kept(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    sender = Recording(failures=[SendFailed("HTTP 503", transient=True)])
    dispatcher = _dispatcher(store, redis_client, sender, base_delay=1.0)
    store.direct = dispatcher
    await dispatcher.store.setup()
    dispatcher.serve_direct()  # as run() does once set up
    async with _running(dispatcher):
        await _committed_item(store, "t7", "o7")
        await dispatcher.settled()
        # Failed once: pending again, its recovery entry rescheduled to the retry's time.
        assert (await store.thread("t7")).outbox[0].status == "pending"
        due = await _recovery(store, redis_client, "t7", "o7")
        assert due is not None
        assert 0 < due - time.time() * 1000 < 30_000
        assert await _until_settled(store, "t7") == "sent"
    assert sender.sent == ["o7"]
    out = (await store.thread("t7")).outbox[0]
    assert out.attempts == 2
    assert await _recovery(store, redis_client, "t7", "o7") is None


@pytest.fixture(autouse=True)
def _no_handoff_left(store: ThreadStore) -> None:
    store.direct = None
