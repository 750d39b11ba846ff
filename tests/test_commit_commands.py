"""What a fenced commit sends Redis: only what changed, and no more commands than it needs.

Counted with INFO commandstats, which counts the commands a script runs inside Redis too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from model.events import ToolResult, UserMessage
from model.records import Origin, OutboxItem
from store import keys
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
    assert await redis_client.hget(keys.ledger("th_i"), "call_1") == b"started"


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


async def test_an_item_claimed_for_this_process_is_written_with_its_deadline_in_one_hset(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    lease = await _leased(store, "th_o")
    store.direct = _Dispatcher()
    item = OutboxItem(outbox_id="o1", thread_id="th_o", kind="final", text="hi", to=NEW.origin)
    await redis_client.config_resetstat()
    await store.commit(lease, ttl_ms=TTL, outbox=[item], state={keys.STATUS: "done"}, release=True)
    calls = await _commands(redis_client)
    assert "time" not in calls
    # state, the item with its claim (status, attempt, deadline): two
    assert calls["hset"] == 2
    until = await redis_client.hget(keys.outbox("th_o"), keys.outbox_field("o1", "c"))
    due = await redis_client.zscore(store.shared.outbox_retry("th_o"), "th_o|o1")
    assert until is not None
    assert due == int(until)  # recovered when the claim runs out
    seconds, micros = await redis_client.time()
    assert 0 < int(until) - (seconds * 1000 + micros // 1000) <= _Dispatcher.claim_ms
