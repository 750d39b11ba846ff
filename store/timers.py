"""Durable approval timers: later route stages and reminders, due at a time, fired once.

The run loop schedules a timer with the commit that creates its reason (the request, a
reminder); any worker polls the due ones. Firing appends an ``ApprovalDue`` event to the
thread's inbox and wakes the thread: the reducer decides what it means. The append is
deduplicated in the thread's ``seen`` set, so however many workers fire the same timer, the
thread hears of it once; a timer whose request is no longer pending fires nothing.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from model.events import ApprovalDue, TimerKind, dump_event
from store import keys, scripts
from store.calls import Calls
from store.partitions import Shared
from store.reads import text


def timer_id(request_id: str, kind: TimerKind, n: int) -> str:
    """Unique per request, kind and number: ``rq_…:stage:1``, ``rq_…:remind:3``."""
    return f"{request_id}:{kind}:{n}"


class Timers:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._fire = client.register_script(scripts.TIMER_FIRE)
        self.shared = Shared(client)
        self.calls = Calls(client)

    async def fire_due(self, limit: int = keys.TIMERS_BATCH) -> int:
        """Fire every timer due by now; how many reached their thread."""
        now_ms = int(time.time() * 1000)
        due: Any = await self.redis.zrangebyscore(keys.TIMERS, "-inf", now_ms, 0, limit)
        fired = 0
        for raw in due:
            member = text(raw)
            tid, _, timer = member.partition("|")
            rid, kind_text, n = timer.rsplit(":", 2)
            if kind_text == keys.CALL_TIMER_KIND:  # a long-running call's timeout
                fired += int(await self.calls.time_out(tid, rid))
                await self.redis.zrem(keys.TIMERS, member)
                continue
            kind: TimerKind = "stage" if kind_text == "stage" else "remind"
            event = ApprovalDue(timer=timer, request_id=rid, kind=kind, n=int(n))

            def then(pipe: aioredis.client.Pipeline, tid: str = tid, member: str = member) -> None:
                pipe.zrem(keys.TIMERS, member)
                pipe.xadd(self.shared.runs(tid), {"t": tid})

            result, *_ = await scripts.run_then(
                self.redis,
                self._fire,
                [keys.requests(tid), keys.inbox(tid), keys.seen(tid)],
                [rid, keys.timer_dedupe(timer), dump_event(event)],
                then,
            )
            fired += int(result == 1)
        return fired
