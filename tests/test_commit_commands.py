"""What a fenced commit sends Redis: only what changed, and no more commands than it needs.

Counted with INFO commandstats, which counts the commands a script runs inside Redis too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from model.events import ToolResult, UserMessage
from model.records import Origin, OutboxItem
from store import keys
from store.changes import RESYNC, ChangeFeed
from store.reads import text
from store.snapshot import Stored
from store.threads import Lease, NewThread, ThreadStore

NEW = NewThread(agent="deploybot", origin=Origin(channel="rest", address="alice"))
TTL = 30_000


async def _commands(client: aioredis.Redis) -> dict[str, int]:
    stats: Any = await client.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    return {k: n for k, n in calls.items() if not k.startswith("config")}  # the reset's own


async def _leased(store: ThreadStore, tid: str) -> Lease:
    msg = UserMessage(channel="rest", sender="alice", text="deploy v1.2.3 to production")
    await store.append_inbound(tid, msg, create=NEW)
    lease = await store.acquire(tid, "w", TTL)
    assert lease is not None
    return lease


async def test_a_commit_of_a_calls_intent_writes_only_the_ledger(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    lease = await _leased(store, "th_i")
    running: dict[str, str | int] = {keys.STATUS: "running", keys.STEPS: 0, keys.ERRORS: 0}
    await store.commit(lease, ttl_ms=TTL, state=running)  # the first writes what was absent
    until = await redis_client.hget(keys.state("th_i"), keys.LEASE_UNTIL)
    await redis_client.config_resetstat()
    await store.commit(lease, ttl_ms=TTL, state=running, ledger={"call_1": "started"}, merge=False)
    calls = await _commands(redis_client)
    assert calls == {"evalsha": 1, "hget": 1, "hset": 1}  # fence, ledger: no TIME, no feed
    assert await redis_client.hget(keys.state("th_i"), keys.LEASE_UNTIL) == until
    # in the state hash (keys.LAYOUT): the acquire reads no ledger key
    assert await redis_client.hget(keys.state("th_i"), keys.LEDGER + "call_1") == b"started"
    assert await redis_client.exists(keys.ledger("th_i")) == 0


async def test_a_mid_run_commit_writes_the_state_fields_that_changed(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    lease = await _leased(store, "th_c")
    await store.commit(lease, ttl_ms=TTL, state={keys.STEPS: 0, keys.ERRORS: 0})
    await store.commit(lease, ttl_ms=TTL, state={keys.STEPS: 1, keys.ERRORS: 0})
    await redis_client.config_resetstat()
    await store.commit(lease, ttl_ms=TTL, state={keys.STEPS: 1, keys.ERRORS: 0})
    assert "hset" not in await _commands(redis_client)
    state = (await store.thread("th_c")).state
    assert (state.status, state.steps, state.errors) == ("running", 1, 0)


async def test_no_errors_field_is_written_until_the_thread_errs(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    lease = await _leased(store, "th_e")
    for errors, release, stored in ((0, False, None), (0, True, None)):
        await store.commit(lease, ttl_ms=TTL, state={keys.ERRORS: errors}, release=release)
        assert await redis_client.hget(keys.state("th_e"), keys.ERRORS) == stored
    for errors, stored in ((1, b"1"), (0, b"0")):  # once written, it is kept up to date
        again = await store.acquire("th_e", "w", TTL)
        assert again is not None
        await store.commit(again, ttl_ms=TTL, state={keys.ERRORS: errors}, release=True)
        assert await redis_client.hget(keys.state("th_e"), keys.ERRORS) == stored
    assert (await store.thread("th_e")).state.errors == 0


async def test_the_lease_is_renewed_once_half_of_it_has_passed_in_server_time(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    lease = await _leased(store, "th_r")
    lease.held.renewed = time.monotonic() - TTL / 1000  # as if the run had taken that long
    await redis_client.config_resetstat()
    await store.commit(lease, ttl_ms=TTL, events=[ToolResult(call_id="c", tool="t", output="x")])
    assert "time" not in await _commands(redis_client)  # the holder knows the server's now
    seconds, micros = await redis_client.time()
    server_ms = seconds * 1000 + micros // 1000
    until = int(await redis_client.hget(keys.state("th_r"), keys.LEASE_UNTIL) or 0)
    assert server_ms + TTL - 5_000 <= until <= server_ms + TTL  # early if anything, not late
    assert time.monotonic() - lease.held.renewed < TTL / 2000  # and not renewed again at once
    await store.commit(lease, ttl_ms=TTL, events=[ToolResult(call_id="d", tool="t", output="y")])
    assert await redis_client.hget(keys.state("th_r"), keys.LEASE_UNTIL) == str(until).encode()


async def test_a_message_that_arrives_mid_run_is_merged_by_the_next_commit_that_looks(
    store: ThreadStore,
) -> None:
    lease = await _leased(store, "th_m")
    later = UserMessage(channel="rest", sender="alice", text="and staging too")
    await store.append_inbound("th_m", later)
    result = await store.commit(lease, ttl_ms=TTL, ledger={"call_1": "started"}, merge=False)
    assert result.merged == []
    assert (await store.thread("th_m")).inbox == [later]
    result = await store.commit(lease, ttl_ms=TTL, release=True)
    assert not result.released  # it arrived: the holder goes on with it
    assert result.merged == [later]
    assert (await store.thread("th_m")).inbox == []


class _Dispatcher:
    """This process's dispatcher, as the commit sees it (store.outbox.Handoff)."""

    claim_ms = 60_000

    def __init__(self) -> None:
        self.taken: list[OutboxItem] = []

    def accepting(self) -> bool:
        return True

    def take(self, items: Sequence[OutboxItem]) -> None:
        self.taken += items


async def test_an_item_claimed_for_this_process_is_written_with_its_deadline_and_no_count(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    lease = await _leased(store, "th_o")
    store.direct = _Dispatcher()
    item = OutboxItem(outbox_id="o1", thread_id="th_o", kind="final", text="hi", to=NEW.origin)
    await redis_client.config_resetstat()
    await store.commit(lease, ttl_ms=TTL, outbox=[item], state={keys.STATUS: "done"}, release=True)
    calls = await _commands(redis_client)
    assert "time" not in calls
    # state, the item (with the requests: keys.OUTBOX_BODY), its claim (the status with
    # its deadline, no count): three
    assert calls["hset"] == 3
    claim = await redis_client.hgetall(keys.outbox("th_o"))
    [(field, status)] = claim.items()
    assert field == keys.outbox_field("o1", keys.OUTBOX_STATUS).encode()
    sending, _, until = status.decode().partition(":")
    due = await redis_client.zscore(store.shared.outbox_retry("th_o"), "th_o|o1")
    assert sending == "sending"
    assert due == int(until)  # recovered when the claim runs out
    seconds, micros = await redis_client.time()
    assert 0 < int(until) - (seconds * 1000 + micros // 1000) <= _Dispatcher.claim_ms


async def test_the_acquire_reads_a_ledger_and_a_snapshot_only_where_the_thread_has_them(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    lease = await _leased(store, "th_l")
    await store.commit(lease, ttl_ms=TTL, ledger={"call_1": "done"}, release=True)
    await redis_client.config_resetstat()
    again = await store.acquire("th_l", "w", TTL)
    assert again is not None
    assert again.ledger == {"call_1": "done"}
    assert (again.base, again.snapshot) == (0, None)
    calls = await _commands(redis_client)
    assert "hmget" not in calls  # no snapshot key to look at
    assert calls["hgetall"] == 1  # the state (the meta is known): no ledger key
    await store.commit(again, ttl_ms=TTL, snapshot=Stored(1, b"{}"), release=True)
    assert await redis_client.hget(keys.state("th_l"), keys.HAS_SNAPSHOT) == b"1"
    third = await store.acquire("th_l", "w", TTL)
    assert third is not None
    assert (third.base, third.snapshot) == (1, b"{}")


async def test_a_thread_from_before_the_layout_keeps_its_ledger_and_snapshot_keys(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    """As the code before keys.LAYOUT stored a thread: no layout field in its meta, a ledger
    key and a snapshot key of their own."""
    msg = UserMessage(channel="rest", sender="alice", text="deploy")
    await store.append_inbound("th_old", msg, create=NEW)
    await redis_client.hdel(keys.meta("th_old"), keys.LAYOUT)
    await redis_client.hset(keys.state("th_old"), keys.STATUS, "idle")
    lease = await store.acquire("th_old", "w", TTL)
    assert lease is not None
    await store.commit(lease, ttl_ms=TTL, release=True)  # the message is in the log now
    await redis_client.hset(keys.ledger("th_old"), "call_0", "started")
    await redis_client.hset(keys.snapshot("th_old"), mapping={"upto": 1, "body": "{}"})
    old = await store.acquire("th_old", "w", TTL)
    assert old is not None
    assert old.ledger == {"call_0": "started"}
    assert (old.base, old.snapshot, old.events) == (1, b"{}", [])
    await store.commit(old, ttl_ms=TTL, ledger={"call_0": "unknown"}, release=True)
    assert await redis_client.hgetall(keys.ledger("th_old")) == {b"call_0": b"unknown"}
    state = await redis_client.hgetall(keys.state("th_old"))
    assert not [f for f in map(text, state) if f.startswith(keys.LEDGER)]


async def test_the_first_acquire_takes_the_log_from_the_inbox_without_reading_it(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    msg = UserMessage(channel="rest", sender="alice", text="deploy")
    await store.append_inbound("th_f", msg, create=NEW)
    await redis_client.config_resetstat()
    lease = await store.acquire("th_f", "w", TTL)
    assert lease is not None
    assert lease.events == [msg]
    assert "lrange" not in await _commands(redis_client)  # nobody wrote its log before
    await store.commit(lease, ttl_ms=TTL, release=True)
    await store.append_inbound("th_f", msg.model_copy(update={"text": "again"}))
    again = await store.acquire("th_f", "w", TTL)
    assert again is not None
    assert [e.text for e in again.events if isinstance(e, UserMessage)] == ["deploy", "again"]


async def test_a_mid_run_change_reaches_the_change_feed_after_a_moment_and_a_release_at_once(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    lease = await _leased(store, "th_p")
    store.feed_delay = 0.05
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(keys.CHANGES)
    subscribed = await pubsub.get_message(timeout=5)
    assert subscribed is not None
    assert subscribed["type"] == "subscribe"
    await redis_client.config_resetstat()
    await store.commit(lease, ttl_ms=TTL, events=[ToolResult(call_id="c", tool="t", output="x")])
    assert "publish" not in await _commands(redis_client)  # not at once ...
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    assert message is not None  # ... but soon after
    assert message["data"] == b"th_p"
    store.feed_delay = 60.0  # a change that waits, then the release: the release tells it
    await store.commit(lease, ttl_ms=TTL, events=[ToolResult(call_id="d", tool="t", output="y")])
    await store.commit(lease, ttl_ms=TTL, release=True)
    assert not store.announcer.waiting  # nothing left waiting
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    assert message is not None
    assert message["data"] == b"th_p"
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_a_thread_leased_before_is_acquired_without_reading_its_meta(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    lease = await _leased(store, "th_k")
    await store.commit(lease, ttl_ms=TTL, release=True)
    await redis_client.config_resetstat()
    again = await store.acquire("th_k", "w", TTL)
    assert again is not None
    assert again.meta == lease.meta
    assert (await _commands(redis_client))["hgetall"] == 1  # the state only
    fresh = ThreadStore(redis_client)  # another process: reads it
    await fresh.commit(again, ttl_ms=TTL, release=True)
    third = await fresh.acquire("th_k", "w", TTL)
    assert third is not None
    assert third.meta == lease.meta


async def test_an_acquire_asks_time_only_when_the_processs_server_clock_is_stale(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    first = await _leased(store, "th_t1")  # TIME: the process knew no server time yet
    await store.commit(first, ttl_ms=TTL, release=True)
    msg = UserMessage(channel="rest", sender="alice", text="deploy")
    await store.append_inbound("th_t2", msg, create=NEW)
    await redis_client.config_resetstat()
    second = await store.acquire("th_t2", "w", TTL)
    assert second is not None
    assert "time" not in await _commands(redis_client)
    seconds, micros = await redis_client.time()
    server_ms = seconds * 1000 + micros // 1000
    assert server_ms + TTL - 5_000 <= second.state.lease_until <= server_ms + TTL  # early
    store.clock.fresh_s = 0.0  # too old now: asked again
    await store.commit(second, ttl_ms=TTL, release=True)
    await redis_client.config_resetstat()
    assert await store.acquire("th_t2", "w", TTL) is not None
    assert (await _commands(redis_client))["time"] == 1


async def test_changes_told_within_a_window_share_one_publish_and_the_feed_reads_every_id(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    feed = ChangeFeed(redis_client)
    batches = feed.batches()
    assert await anext(batches) == RESYNC  # subscribed
    await redis_client.config_resetstat()
    for tid in ("th_w1", "th_w2", "th_w3"):
        await store.append_inbound(
            tid,
            UserMessage(channel="rest", sender="u", text="hi"),
            create=NewThread(agent="a", origin=Origin(channel="rest", address="u")),
        )
    seen: set[str] = set()
    while len(seen) < 3:
        batch = await asyncio.wait_for(anext(batches), 5)
        assert batch != RESYNC
        seen |= set(batch)
    assert seen == {"th_w1", "th_w2", "th_w3"}
    assert (await _commands(redis_client))["publish"] == 1
    await batches.aclose()
