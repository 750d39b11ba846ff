"""An idle service's Redis calls: bounded per loop turn, and sweeps that stretch while idle.

Not timing tests: the count is of commands over a span in which the loops turn many times
(each turn would have sent a read before the reads stayed in flight), and the pace is
driven by a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from agent.config import Registry
from agent.llm import OpenAILLM
from agent.outbox import OutboxDispatcher, OutboxSettings
from agent.pace import IDLE_STRETCH, SweepPace
from agent.worker import Worker, WorkerSettings
from store.outbox import OutboxStore
from store.threads import ThreadStore

TURN_MS = 20
"""The loops' block: a turn every 20 ms, some 75 in the counted span on a quiet machine."""


async def _calls(client: aioredis.Redis) -> dict[str, int]:
    """Commands run so far, by name, over every master."""
    if isinstance(client, RedisCluster):
        per_node: Any = await client.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
        stats = list(per_node.values())
    else:
        stats = [await client.info("commandstats")]
    calls: dict[str, int] = {}
    for one in stats:
        for name, value in one.items():
            name = name.removeprefix("cmdstat_")
            calls[name] = calls.get(name, 0) + int(value["calls"])
    return calls


async def test_an_idle_worker_and_outbox_send_nothing_per_loop_turn(
    redis_client: aioredis.Redis, store: ThreadStore, registry: Registry, llm: OpenAILLM
) -> None:
    worker = Worker(store, registry, llm, name="idle", settings=WorkerSettings(block_ms=TURN_MS))
    outbox = OutboxDispatcher(
        store.outbox_stream,
        OutboxStore(redis_client),
        {},
        name="idle",
        settings=OutboxSettings(block_ms=TURN_MS),
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(outbox.run(stop))]
    try:
        await asyncio.sleep(0.5)  # set up, first sweeps made, reads sent
        before = await _calls(redis_client)
        await asyncio.sleep(1.5)
        after = await _calls(redis_client)
        sent = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
        sent.pop("info", None)  # this test's own
        # The reads wait in Redis across turns; the next sweeps are 10 s and more away.
        assert sent == {}

        # A wake-up still reaches the worker at once (its read is the one in flight), and
        # brings the sweeps back to their normal pace. No such thread: it is acknowledged.
        assert worker.pace.interval > worker.pace.every  # the first sweep found nothing
        await store.runs.add({"t": "th_nobody"})
        for _ in range(100):
            if sum([await redis_client.xlen(k) for k in store.runs.keys]) == 0:
                break
            await asyncio.sleep(0.02)
        assert sum([await redis_client.xlen(k) for k in store.runs.keys]) == 0
        assert worker.pace.interval == worker.pace.every
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


def test_sweeps_stretch_while_they_find_nothing_and_come_back_with_work() -> None:
    pace = SweepPace(15.0)
    now, sweeps = 0.0, 0
    while now < 3600:  # an idle hour, the loop turning every second
        if pace.due(now):
            sweeps += 1
            pace.swept(now, found=False)
        now += 1
    # 15, 30, 60, then every 120 s: some 33 sweeps, where a busy pace makes 240.
    assert pace.interval == 15.0 * IDLE_STRETCH
    assert sweeps <= 3600 / pace.longest + 4
    last = pace.last
    pace.busy()  # a message: the next sweep at the normal pace after the last
    assert pace.until(now) == max(0.0, last + 15.0 - now)
    pace.swept(now, found=True)
    assert pace.interval == 15.0
    pace.swept(now + 15, found=False)
    assert pace.interval == 30.0
