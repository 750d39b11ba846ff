"""Schedules: each tick starts exactly one thread, however many workers poll, and after a
restart ``missed = "once"`` makes up once for the ticks that passed, ``"skip"`` not at all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.errors import ConfigError
from agent.scheduler import Scheduler, tick_thread
from agent.triggers import ScheduleConfig
from model.events import UserMessage
from store.threads import ThreadStore
from tests.agents_toml import two_agents

PARIS = ZoneInfo("Europe/Paris")


def _schedule(missed: str = "skip") -> ScheduleConfig:
    return ScheduleConfig(
        agent="rollbackbot",
        cron="0 9 * * 1-5",
        timezone="Europe/Paris",
        message="{{ schedule }} at {{ tick }}: {{ missed }} missed",
        report_to=["slack:C0ONCALL", "email:oncall@example.com"],
        missed=missed,  # type: ignore[arg-type]
    )


class Clock:
    def __init__(self, when: datetime) -> None:
        self.now = when

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)


def _workers(store: ThreadStore, clock: Clock, missed: str = "skip", n: int = 2) -> list[Scheduler]:
    return [Scheduler(store, {"standup": _schedule(missed)}, clock) for _ in range(n)]


async def _threads(store: ThreadStore) -> list[str]:
    return sorted(s.meta.thread_id for s in await store.summaries(100))


async def test_a_tick_starts_one_thread_with_two_workers_polling(store: ThreadStore) -> None:
    clock = Clock(datetime(2026, 11, 30, 8, 30, tzinfo=PARIS))  # a Monday, before the tick
    workers = _workers(store, clock)
    assert await asyncio.gather(*(w.poll() for w in workers)) == [[], []]  # first start
    assert await _threads(store) == []

    clock.now = datetime(2026, 11, 30, 9, 0, 2, tzinfo=PARIS)
    started = await asyncio.gather(*(w.poll() for w in workers))
    tick = datetime(2026, 11, 30, 9, 0, tzinfo=PARIS)
    assert await _threads(store) == [tick_thread("standup", tick)]
    assert tick_thread("standup", tick) in started[0] + started[1]
    view = await store.thread(tick_thread("standup", tick))
    assert view.meta.agent == "rollbackbot"
    assert view.meta.origin.target == "slack:C0ONCALL"
    assert view.meta.origin.copies == ["email:oncall@example.com"]
    [message] = [e for e in [*view.events, *view.inbox] if isinstance(e, UserMessage)]
    assert message.text == "standup at 2026-11-30T09:00:00+01:00: 0 missed"
    assert (message.channel, message.sender) == ("schedule", "standup")

    # Polled again in the same minute, and by a third worker: nothing new.
    clock.now = datetime(2026, 11, 30, 9, 0, 40, tzinfo=PARIS)
    later = _workers(store, clock, n=1)[0]
    assert await asyncio.gather(workers[0].poll(), later.poll()) == [[], []]
    assert len(await _threads(store)) == 1


@pytest.mark.parametrize("missed", ["once", "skip"])
async def test_after_downtime_missed_ticks_start_once_or_not_at_all(
    store: ThreadStore, missed: str
) -> None:
    clock = Clock(datetime(2026, 11, 30, 8, 30, tzinfo=PARIS))
    [before] = _workers(store, clock, missed, n=1)
    assert await before.poll() == []
    # Down from Monday 8:30 to Friday noon: five ticks passed, the last three hours ago.
    clock.now = datetime(2026, 12, 4, 12, 0, tzinfo=PARIS)
    restarted = _workers(store, clock, missed)
    results = await asyncio.gather(*(w.poll() for w in restarted))
    friday = tick_thread("standup", datetime(2026, 12, 4, 9, 0, tzinfo=PARIS))
    if missed == "once":
        assert await _threads(store) == [friday]
        view = await store.thread(friday)
        [message] = [e for e in [*view.events, *view.inbox] if isinstance(e, UserMessage)]
        assert message.text == "standup at 2026-12-04T09:00:00+01:00: 4 missed"
    else:
        assert results == [[], []]
        assert await _threads(store) == []
    # Either way the next tick, on time, starts its own thread, once.
    clock.now = datetime(2026, 12, 7, 9, 0, 1, tzinfo=PARIS)
    await asyncio.gather(*(w.poll() for w in restarted))
    monday = tick_thread("standup", datetime(2026, 12, 7, 9, 0, tzinfo=PARIS))
    assert monday in await _threads(store)
    assert len(await _threads(store)) == (2 if missed == "once" else 1)


async def test_the_loop_sleeps_until_stopped_without_schedules(store: ThreadStore) -> None:
    stop = asyncio.Event()
    stop.set()
    await Scheduler(store, {}).run(stop)  # returns at once: nothing to keep


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        ('cron = "61 * * * *"', "cron '61 * * * *': Bad minute"),
        ('cron = "0 9 * * *"\ntimezone = "Mars/Olympus"', "unknown timezone 'Mars/Olympus'"),
        ('cron = "0 9 * * *"\nmessage2 = "x"', "message2: Extra inputs are not permitted"),
    ],
)
def test_a_wrong_schedule_stops_the_start(tmp_path: Path, lines: str, error: str) -> None:
    extra = (
        '\n[schedules.standup]\nagent = "deploybot"\nmessage = "standup {{ tick }}"\n'
        f'report_to = ["slack:C0ONCALL"]\n{lines}\n'
    )
    with pytest.raises(ConfigError) as caught:
        two_agents(tmp_path, "", "", extra=extra)
    assert error in str(caught.value)


def test_a_template_the_tick_cannot_fill_stops_the_start(tmp_path: Path) -> None:
    extra = (
        '\n[schedules.standup]\nagent = "deploybot"\ncron = "0 9 * * *"\n'
        'message = "{{ payload.x }}"\nreport_to = ["slack:C0ONCALL"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        two_agents(tmp_path, "", "", extra=extra)
    assert "message template: 'payload' is undefined" in str(caught.value)


def test_a_schedule_of_an_unknown_agent_stops_the_start(tmp_path: Path) -> None:
    extra = (
        '\n[schedules.standup]\nagent = "nobody"\ncron = "0 9 * * *"\n'
        'message = "hi"\nreport_to = ["slack:C0ONCALL"]\n'
    )
    with pytest.raises(ConfigError, match=r"schedules\.standup: agent 'nobody' is not configured"):
        two_agents(tmp_path, "", "", extra=extra)


async def test_two_running_workers_start_a_tick_once(store: ThreadStore) -> None:
    """Two schedulers' loops, as two worker processes run them, on a clock set just before
    a minute's tick: each sleeps until it, and the tick's thread is stored once."""
    real = datetime.now(UTC)
    boundary = real.replace(second=0, microsecond=0) + timedelta(minutes=1)
    shift = boundary - timedelta(seconds=0.3) - real

    def clock() -> datetime:
        return datetime.now(UTC) + shift

    every = ScheduleConfig(
        agent="deploybot", cron="* * * * *", message="tick {{ tick }}", report_to=["rest:ops"]
    )
    stop = asyncio.Event()
    loops = [
        asyncio.create_task(Scheduler(store, {"minutely": every}, clock).run(stop))
        for _ in range(2)
    ]
    try:
        for _ in range(500):
            if await _threads(store):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # room for the second worker's (deduplicated) start
    finally:
        stop.set()
        await asyncio.gather(*loops)
    assert await _threads(store) == [tick_thread("minutely", boundary)]
    view = await store.thread(tick_thread("minutely", boundary))
    assert len([e for e in [*view.events, *view.inbox] if isinstance(e, UserMessage)]) == 1
