"""Workers: take runnable threads off the runs stream, lease each, and run it until it pauses.

Any worker can advance any thread. An entry is acknowledged only once its run has released
the lease, so a worker that dies mid-run leaves the entry pending; another worker claims it
when it has been idle for a lease's length, by which time the lease has run out too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent import context
from agent.config import Registry
from agent.contact import Contact
from agent.errors import ShuttingDown
from agent.llm import LLM
from agent.pace import SweepPace
from agent.reducer import resting_status
from agent.runner import Run, RunSettings
from model.events import SystemNote
from model.ids import new_id
from model.records import Status
from store.connection import INFRA_ERRORS, Outage
from store.errors import LeaseLost, ThreadNotFound
from store.outbox import Handoff
from store.streams import Entry, unless_stopped
from store.threads import Lease, ThreadStore
from store.timers import Timers
from telemetry import logs, metrics, tracing

log = logging.getLogger("switchboard.worker")

INTERNAL_ERROR_NOTE = "internal error while running; see the worker's log"
INTERNAL_ERROR_QUESTION = (
    "Something went wrong inside Switchboard while I was working on this (an internal "
    "error, logged for the operators). Reply here to let me try again."
)


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 8
    run: RunSettings = field(default_factory=RunSettings)
    block_ms: int = 4000
    """How long a read of the runs stream waits inside Redis when nothing comes: an entry
    ends the wait at once, so a long one only makes an idle worker quieter. Below redis-py's
    default socket timeout (5 s), which would cut a longer read off and reconnect."""
    maintenance_s: float = 15.0
    """Seconds between looks at shared schedules (entries to reclaim, deadlines, timers)
    while the worker has work; an idle one stretches it (agent.pace, up to 8x). Deadlines
    and timers this process set are looked at when due (ThreadStore.next_due_ms); those set
    elsewhere within this long, or the stretched interval when idle."""
    shutdown_grace: float = 30.0
    """Seconds a stopping worker waits for runs in flight before it cuts them off."""
    alive_file: Path | None = None
    """Touched at most every second while the loop turns (every ``block_ms`` when idle): a
    container healthcheck's signal."""


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{new_id('w')[2:8]}"


class Worker:
    def __init__(
        self,
        store: ThreadStore,
        registry: Registry,
        llm: LLM,
        *,
        name: str | None = None,
        settings: WorkerSettings | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.llm = llm
        self.name = name or worker_name()
        self.settings = settings or WorkerSettings()
        self.outage = Outage(log, f"worker {self.name}", store.redis)
        self._stop: asyncio.Event | None = None
        self._alive_at = float("-inf")
        self.timers = Timers(store.redis)
        # An abandoned entry waits out a lease anyway: half of one more is no harm.
        self.pace = SweepPace(min(self.ttl_ms / 2000, self.settings.maintenance_s))

    def warm(self) -> None:
        """Do at start-up what the first run of each agent would otherwise do on its first
        thread (``context.warm``). A failure here would be that first run's too, which
        handles it as it always has; so it is logged, and the start goes on."""
        for agent in self.registry.agents.values():
            try:
                context.warm(agent)
            except Exception:
                log.warning(
                    "could not render agent %s's context at start-up", agent.name, exc_info=True
                )

    def deliver_with(self, outbox: Handoff) -> None:
        """Hand the outbox items this worker's commits make to ``outbox``, the dispatcher
        running in this process: claimed in the commit and sent from here, instead of a
        pointer on the outbox stream for whichever dispatcher reads it (store.outbox)."""
        self.store.direct = outbox

    @property
    def ttl_ms(self) -> int:
        return self.settings.run.lease_ttl_ms

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        ready = False
        while not stop.is_set():
            self._alive(loop.time())
            free = self.settings.concurrency - len(tasks)
            if free <= 0:
                await asyncio.wait(tasks, timeout=1, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                if not ready:
                    await self.store.setup()
                    ready = True
                reclaimed: list[Entry] = []
                if self.pace.due(loop.time()) or self._due():
                    reclaimed = await self._maintain(free)
                wait_ms = min(self.settings.block_ms, self._until_due_ms())
                fresh = (
                    []
                    if reclaimed
                    else await unless_stopped(
                        self.store.runs.read(self.name, free, max(wait_ms, 1)), stop
                    )
                )
            except INFRA_ERRORS as exc:
                # Redis is away: wait it out. Runs in flight fail at their next write and
                # are taken up again from what Redis holds (see handle).
                metrics.REDIS_ERRORS.labels("worker").inc()
                await self.outage.wait(exc, stop)
                continue
            self.outage.ok()
            if fresh or tasks:  # at work: the schedules at their normal pace
                self.pace.busy()
            for entry, was_reclaimed in [(e, True) for e in reclaimed] + [
                (e, False) for e in fresh
            ]:
                task = asyncio.create_task(self.handle(entry, reclaimed=was_reclaimed))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await self._drain(tasks)
        await self.store.runs.close()

    def _due(self) -> bool:
        return time.time() * 1000 >= self.store.next_due_ms

    def _until_due_ms(self) -> int:
        """Milliseconds to the next look at the schedules: the round, or a cue before it."""
        until = self.pace.until(asyncio.get_running_loop().time()) * 1000
        return int(max(0.0, min(until, self.store.next_due_ms - time.time() * 1000)))

    async def _maintain(self, free: int) -> list[Entry]:
        """Reclaim abandoned entries, expire passed deadlines, fire due timers."""
        self.store.next_due_ms = float("inf")  # looked at now; later cues set it again
        now = asyncio.get_running_loop().time()
        reclaimed = await self.store.runs.reclaim(self.name, self.ttl_ms, free)
        expired = await self.store.expire_due()
        if expired:
            metrics.EXPIRED.inc(expired)
            log.info("%d request(s) expired unanswered", expired)
        fired = await self.timers.fire_due()
        await self.store.runs.trim()
        self.pace.swept(now, found=bool(reclaimed or expired or fired))
        return reclaimed

    def _alive(self, now: float) -> None:
        path = self.settings.alive_file
        if path is not None and now - self._alive_at >= 1.0:
            self._alive_at = now
            path.touch()

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        """Give runs in flight (a tool running, say) the grace period to reach their next
        step; cancel the rest. A tool cut off that way stays in its own session, and its
        'started' ledger entry sends the thread to a human on its next run."""
        if not tasks:
            return
        grace = self.settings.shutdown_grace
        log.info("stopping: waiting up to %g s for %d run(s) in flight", grace, len(tasks))
        _, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            log.warning("stopping: %d run(s) cut off after %g s", len(late), grace)
            await asyncio.wait(late)

    async def handle(self, entry: Entry, *, reclaimed: bool = False) -> None:
        thread_id = entry.fields.get("t", "")
        try:
            with logs.bound(thread_id=thread_id, worker=self.name):
                await self._handle(thread_id, entry, reclaimed)
        except INFRA_ERRORS as exc:
            # The entry stays pending: once its lease has run out, a worker reclaims it and
            # runs the thread again from what Redis holds. Nothing here can tell whether
            # the last write went through, so nothing is written blindly a second time.
            await self.outage.failed(exc)
            log.info("run of %s interrupted by Redis (%s); it is retried", thread_id, exc)

    async def _handle(self, thread_id: str, entry: Entry, reclaimed: bool) -> None:
        try:
            lease = await self.store.acquire(thread_id, self.name, self.ttl_ms)
        except ThreadNotFound:
            await self.store.runs.ack(entry)
            return
        if lease is None:
            # Another worker holds the thread; it merges whatever woke us before it lets go.
            # A reclaimed entry stays pending, though: its holder may be dead, its lease not
            # yet run out.
            if not reclaimed:
                await self.store.runs.ack(entry)
            return
        if reclaimed:
            metrics.LEASE_TAKEOVERS.inc()
            log.warning("lease taken over: the worker running this thread went silent")
        heartbeat = Heartbeat(self.store, lease, entry, self.name, self.ttl_ms)
        started = time.perf_counter()
        outcome = "failed"
        agent = lease.meta.agent
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
            tracing.CONVERSATION_ID: thread_id,
        }
        with (
            logs.bound(agent=agent),
            tracing.span(
                f"invoke_agent {agent}", parent=lease.meta.trace, attributes=attributes
            ) as span,
        ):
            try:
                outcome = await self._run(lease, entry)
            except LeaseLost:
                outcome = "lease_lost"
                log.warning("lost the lease on %s; another worker has it now", thread_id)
                await self.store.runs.ack(entry)
            except ShuttingDown:
                outcome = "handed_over"
                await self._hand_over(lease, entry)
            except INFRA_ERRORS:
                outcome = "interrupted"
                metrics.REDIS_ERRORS.labels("worker").inc()
                raise
            except Exception:
                log.exception("run of %s failed", thread_id)
                await self._fail(lease, entry)
            finally:
                await heartbeat.stop()
                elapsed = time.perf_counter() - started
                metrics.child(metrics.RUN_SECONDS, agent, outcome).observe(elapsed)
                span.set_attribute("switchboard.run.outcome", outcome)
            log.info("run ended: %s", outcome, extra={"outcome": outcome})

    async def _run(self, lease: Lease, entry: Entry) -> Status:
        """Run the thread until it rests; the status it rests in."""
        agent = self.registry.get(lease.meta.agent)
        ack = (self.store.runs, entry)
        if agent is None:
            metrics.ESCALATIONS.labels(lease.meta.agent).inc()
            await self.store.commit(
                lease,
                ttl_ms=self.ttl_ms,
                events=[
                    SystemNote(
                        kind="escalation", text=f"agent {lease.meta.agent!r} is not configured"
                    )
                ],
                state={"status": "failed"},
                release=True,
                merge=False,
                ack=ack,
            )
            return "failed"
        run = Run(lease, agent, self.llm, self.store, self.settings.run, ack=ack, stop=self._stop)
        await run.go()
        return resting_status(run.events)

    async def _hand_over(self, lease: Lease, entry: Entry) -> None:
        """Stopping between steps: let go of the thread and wake it for another worker now,
        rather than leave it to be reclaimed once the lease has run out."""
        await self.store.commit(
            lease,
            ttl_ms=self.ttl_ms,
            release=True,
            merge=False,
            ack=(self.store.runs, entry),
        )
        await self.store.runs.add({"t": lease.thread_id})
        log.info("stopping: %s handed over between steps", lease.thread_id)

    async def _fail(self, lease: Lease, entry: Entry) -> None:
        """A bug in the run itself: note it on the thread and ask a human, rather than retry
        it forever or park the thread where nobody looks."""
        metrics.ESCALATIONS.labels(lease.meta.agent).inc()
        agent = self.registry.get(lease.meta.agent)
        contact = Contact(
            lease.thread_id, lease.meta.origin, agent.request_timeout if agent else None
        )
        question = contact.question(INTERNAL_ERROR_QUESTION)
        requests, outbox = contact.take()
        try:
            await self.store.commit(
                lease,
                ttl_ms=self.ttl_ms,
                events=[SystemNote(kind="escalation", text=INTERNAL_ERROR_NOTE), question],
                state={"status": "awaiting_human", "errors": 0},
                requests=requests,
                outbox=outbox,
                release=True,
                merge=False,
                ack=(self.store.runs, entry),
            )
        except Exception:
            log.exception("could not hand %s to a human after an internal error", lease.thread_id)


class Heartbeat:
    """Keeps the lease, and the entry's idle time, fresh while a run takes long: every third
    of the lease, until the lease is lost or ``stop``. A timer until it is due, not a task
    sleeping beside every run (most runs end long before their first beat; a task made,
    cancelled and awaited per run cost three times a timer's CPU)."""

    def __init__(
        self, store: ThreadStore, lease: Lease, entry: Entry, owner: str, ttl_ms: int
    ) -> None:
        self._store = store
        self._lease = lease
        self._entry = entry
        self._owner = owner
        self._ttl_ms = ttl_ms
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._timer = self._loop.call_later(ttl_ms / 3000, self._beat)

    def _beat(self) -> None:
        self._task = self._loop.create_task(self._renew())

    async def _renew(self) -> None:
        try:
            if not await self._store.extend(self._lease, self._ttl_ms):
                return
            await self._store.runs.touch(self._owner, self._entry)
        except INFRA_ERRORS:
            pass  # the run itself meets the outage at its next write
        self._timer = self._loop.call_later(self._ttl_ms / 3000, self._beat)

    async def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
