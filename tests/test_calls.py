"""store.calls on a real Redis: a started call is settled once, by its result or its timeout,
however many senders and workers race; signatures bind the call and the expiry."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from model.events import CallReported, UserMessage, load_events
from model.records import Origin
from store import keys
from store.calls import Calls, signature, timer_id
from store.threads import Lease, NewThread, ThreadStore
from store.timers import Timers


async def _leased(store: ThreadStore) -> Lease:
    create = NewThread(agent="deploybot", origin=Origin(channel="rest", address="alice"))
    await store.append_inbound(
        "th_1", UserMessage(channel="rest", sender="a", text="hi"), create=create
    )
    lease = await store.acquire("th_1", "w1", 5_000)
    assert lease is not None
    return lease


def _report(call_id: str, text: str) -> CallReported:
    return CallReported(call_id=call_id, outcome="result", text=text, by="rest:api")


async def _inbox(redis_client: aioredis.Redis) -> list[str]:
    raw = await redis_client.lrange(keys.inbox("th_1"), 0, -1)
    return [e.type for e in load_events(raw)]


async def test_racing_results_store_one(store: ThreadStore, redis_client: aioredis.Redis) -> None:
    calls = Calls(redis_client)
    await calls.open(await _leased(store), "call_1", "deploy")
    reports = await asyncio.gather(*(calls.report(_report("call_1", f"r{i}")) for i in range(5)))
    assert sorted(r.outcome for r in reports) == ["duplicate"] * 4 + ["stored"]
    assert {r.thread_id for r in reports} == {"th_1"}
    assert await _inbox(redis_client) == ["call_reported"]
    assert not await calls.time_out("th_1", "call_1")  # the result came first: no timeout
    assert await _inbox(redis_client) == ["call_reported"]


async def test_the_timeout_fires_once_across_workers_and_then_refuses_the_result(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    calls = Calls(redis_client)
    await calls.open(await _leased(store), "call_1", "deploy")
    past = int(time.time() * 1000) - 1
    await redis_client.zadd(keys.TIMERS, {keys.timer_member("th_1", timer_id("call_1")): past})
    fired = await asyncio.gather(*(Timers(redis_client).fire_due() for _ in range(3)))
    assert sum(fired) == 1
    assert await redis_client.zcard(keys.TIMERS) == 0
    assert await _inbox(redis_client) == ["call_due"]
    late = await calls.report(_report("call_1", "done"))
    assert late.outcome == "settled"
    assert await _inbox(redis_client) == ["call_due"]


async def test_a_call_answered_at_once_takes_no_result(
    store: ThreadStore, redis_client: aioredis.Redis
) -> None:
    calls = Calls(redis_client)
    lease = await _leased(store)
    await calls.open(lease, "call_1", "deploy")
    await calls.open(lease, "call_1", "deploy")  # a retried run: still the one call
    await calls.close(lease, "call_1")
    assert (await calls.report(_report("call_1", "x"))).outcome == "settled"
    assert await _inbox(redis_client) == []


async def test_signatures_bind_call_and_expiry(redis_client: aioredis.Redis) -> None:
    calls = Calls(redis_client)
    query = await calls.signed_query("call_1", 60)
    fields = dict(part.split("=") for part in query.split("&"))
    expires, sig = int(fields["expires"]), fields["signature"]
    assert await calls.check_signature("call_1", expires, sig)
    assert not await calls.check_signature("call_2", expires, sig)
    assert not await calls.check_signature("call_1", expires + 1, sig)
    key = await calls.signing_key()
    assert await Calls(redis_client).signing_key() == key  # another process agrees
    stale = int(time.time()) - 1
    assert not await calls.check_signature("call_1", stale, signature(key, "call_1", stale))
