"""The worker's heartbeat (agent.worker.Heartbeat): renews a long run's lease and entry every
third of the lease, stops when the lease is lost, and leaves nothing running once stopped."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from agent.worker import Heartbeat
from store.streams import Entry

ENTRY = Entry("1-0", {"t": "th_x"}, "sb:{work}:runs")


class _Runs:
    def __init__(self) -> None:
        self.touched = 0

    async def touch(self, owner: str, entry: Entry) -> None:
        self.touched += 1


class _Store:
    """Extends ``held`` times (the first failing with a lost connection), then not."""

    def __init__(self, held: int) -> None:
        self.held = held
        self.extends = 0
        self.runs = _Runs()
        self.lost = asyncio.Event()
        self.beaten = asyncio.Event()

    async def extend(self, lease: Any, ttl_ms: int) -> bool:
        self.extends += 1
        self.beaten.set()
        if self.extends == 1:
            raise RedisConnectionError("gone for a moment")
        if self.extends > self.held:
            self.lost.set()
            return False
        return True


async def test_beats_every_third_of_the_lease_until_it_is_lost() -> None:
    store = _Store(held=3)
    beat = Heartbeat(store, None, ENTRY, "w", ttl_ms=30)  # type: ignore[arg-type]
    await asyncio.wait_for(store.lost.wait(), 10)
    for _ in range(5):
        await asyncio.sleep(0.01)  # a lost lease is not renewed again
    await beat.stop()
    # The outage was ridden out; two renewals went through, the fourth found the lease gone.
    assert (store.extends, store.runs.touched) == (4, 2)


async def test_a_stopped_heartbeat_beats_no_more() -> None:
    store = _Store(held=1000)
    beat = Heartbeat(store, None, ENTRY, "w", ttl_ms=30)  # type: ignore[arg-type]
    await asyncio.wait_for(store.beaten.wait(), 10)
    await beat.stop()
    seen = store.extends
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert store.extends == seen
    # A run that ends before its first beat leaves nothing behind either.
    quick = Heartbeat(store, None, ENTRY, "w", ttl_ms=30_000)  # type: ignore[arg-type]
    await quick.stop()
    assert store.extends == seen
