"""The schedules' clock, in every worker process: each tick starts exactly one thread.

However many workers run, a tick's thread id derives from the schedule and the tick, and its
message is stored with the tick as its dedupe key: every worker may start the same tick, and
Redis keeps one. The schedule's cursor (store.schedules) says which ticks were dealt with, so a
restart neither repeats a tick nor, unless ``missed = "once"``, makes up for the ones that
passed while no worker ran. The message is stored before the cursor moves: a worker that dies
between the two leaves the tick to the next one, which stores it once.

Idle, the loop sleeps until the next tick of any schedule (at most ``MAX_SLEEP_S``, so a
changed clock is noticed), and reads one cursor per schedule that is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from agent.triggers import ScheduleConfig, TemplateRefused, render, tick_values
from model.events import UserMessage, utcnow
from model.ids import thread_id_for
from model.records import Origin
from store import keys
from store.schedules import ScheduleCursors
from store.threads import NewThread, ThreadStore

log = logging.getLogger("switchboard.scheduler")

CHANNEL = "schedule"
"""The channel of a tick's message in the thread's log (its sender: the schedule's name)."""
ON_TIME_S = 60.0
"""A tick found this long after it was due still counts as on time (a busy or just-started
worker); later, it was missed while no worker ran and ``missed`` decides."""
MAX_SLEEP_S = 60.0
MIN_SLEEP_S = 0.05
RETRY_S = 2.0
"""After a failed poll (Redis away), the next try waits at least this long."""
MAX_COUNTED = 10_000
"""Missed ticks are counted up to this many (the count is only told to the agent)."""


def tick_thread(name: str, tick: datetime) -> str:
    """The thread of one tick of a schedule: the same in every worker."""
    return thread_id_for(CHANNEL, f"{name}\x00{int(tick.timestamp() * 1000)}")


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def count_between(config: ScheduleConfig, after: datetime, before: datetime) -> int:
    """How many ticks fall strictly between ``after`` and ``before``."""
    n, tick = 0, config.next_after(after)
    while tick < before and n < MAX_COUNTED:
        n, tick = n + 1, config.next_after(tick)
    return n


class Scheduler:
    def __init__(
        self,
        store: ThreadStore,
        schedules: Mapping[str, ScheduleConfig],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.schedules = dict(schedules)
        self.cursors = ScheduleCursors(store.redis)
        self.clock = clock
        self._due: dict[str, datetime] = {}
        """When each schedule is next worth a look (its next tick); absent: at once."""

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: start what is due, sleep until the next tick."""
        if not self.schedules:
            return
        log.info("schedules: %s", ", ".join(self.schedules))
        failing = False
        while not stop.is_set():
            try:
                await self.poll()
            except Exception:  # Redis away, say: say so once, try again a little later
                if not failing:
                    log.warning("schedules: poll failed; retrying", exc_info=True)
                failing = True
            else:
                failing = False
            now = self.clock()
            wake = min(self._due.values(), default=now + timedelta(seconds=MAX_SLEEP_S))
            pause = min(max((wake - now).total_seconds(), MIN_SLEEP_S), MAX_SLEEP_S)
            if failing:
                pause = max(pause, RETRY_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    async def poll(self) -> list[str]:
        """Deal with every schedule whose tick is due; the thread ids started."""
        now = self.clock()
        started = []
        for name, config in self.schedules.items():
            if self._due.get(name, now) > now:
                continue
            tid = await self.due(name, config, now)
            if tid is not None:
                started.append(tid)
            self._due[name] = config.next_after(now)
        return started

    async def due(self, name: str, config: ScheduleConfig, now: datetime) -> str | None:
        """One schedule at ``now``: the thread of its tick when one starts, else None."""
        latest = config.latest_at(now)
        cursor = await self.cursors.get(name)
        if cursor is None:
            await self.cursors.start(name, _ms(latest))  # a new schedule: from now on
            return None
        if _ms(latest) <= cursor:
            return None
        last = datetime.fromtimestamp(cursor / 1000, UTC)
        missed = count_between(config, last, latest)
        on_time = (now - latest).total_seconds() <= ON_TIME_S
        tid = None
        if on_time or config.missed == "once":
            tid = await self.start(name, config, latest, missed)
        else:
            log.info("schedule %s: tick %s missed while no worker ran; skipped", name, latest)
        await self.cursors.advance(name, _ms(latest))
        return tid

    async def start(self, name: str, config: ScheduleConfig, tick: datetime, missed: int) -> str:
        """Store the tick's message on its own thread (once, whoever does it first)."""
        local = tick.astimezone(config.zone())
        try:
            text = render(config.message, tick_values(name, local, missed))
        except TemplateRefused as exc:  # rendered once at load; still, never lose a tick
            text = f"Schedule {name}, tick {local.isoformat()} ({exc})"
        tid = tick_thread(name, tick)
        event = UserMessage(channel=CHANNEL, sender=name, text=text, message_id=local.isoformat())
        create = NewThread(agent=config.agent, origin=Origin.report_to(config.report_to))
        if await self.store.append_inbound(
            tid, event, dedupe=keys.schedule_dedupe(_ms(tick)), create=create
        ):
            log.info("schedule %s: tick %s started thread %s", name, local.isoformat(), tid)
        return tid
