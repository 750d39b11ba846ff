"""The outbox dispatcher: delivers each item once, handed over by its own process's commits
or taken off the outbox stream.

At least once to the channel, once in front of the human: an item is claimed before its
sender is called and marked sent after, so a redelivered pointer finds it done; an attempt
cut short by a crash is repeated only where the channel says a repeat is safe. The items
this process's worker commits arrive already claimed for this dispatcher (``take``; see
store.outbox): they are sent at once and settled in one round trip. The stream brings the
rest: items committed where no dispatcher ran, due retries, and the claims of a process
that died before settling them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from agent import deliveries
from agent.delivery import Finds, Sender, SendFailed
from agent.pace import SweepPace
from model.records import OutboxItem
from store.connection import INFRA_ERRORS, Outage
from store.outbox import Claim, OutboxStore
from store.scripts import Then
from store.streams import Entry, WorkStream, unless_stopped
from telemetry import metrics

log = logging.getLogger("switchboard.outbox")


@dataclass(frozen=True)
class OutboxSettings:
    concurrency: int = 8
    claim_ms: int = 60_000
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    block_ms: int = 4000
    """How long a read of the outbox stream waits inside Redis when nothing comes (below
    redis-py's default 5 s socket timeout, as the worker's)."""
    retry_poll_s: float = 10.0
    """Seconds between looks for due retries scheduled by other processes while there is
    work (an idle dispatcher stretches it, and its reclaim's half-claim, up to 8x:
    agent.pace); this process's own are moved when due (OutboxStore.next_retry)."""


class OutboxDispatcher:
    def __init__(
        self,
        stream: WorkStream,
        store: OutboxStore,
        senders: Mapping[str, Sender],
        *,
        name: str,
        settings: OutboxSettings | None = None,
    ) -> None:
        self.stream = stream
        self.store = store
        self.senders = dict(senders)
        self.name = name
        self.settings = settings or OutboxSettings()
        self.outage = Outage(log, f"outbox {name}", store.redis)
        self._open = False
        self._direct: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.Task[None]] = set()

    # ---- items handed over by this process's commits (store.outbox.Handoff) ---------------
    @property
    def claim_ms(self) -> int:
        return self.settings.claim_ms

    def accepting(self) -> bool:
        return self._open

    def serve_direct(self) -> None:
        """Take items from this process's commits from now on (``run`` does, once set up)."""
        self._open = True

    def take(self, items: Sequence[OutboxItem]) -> None:
        # Started now, not queued behind the stream's concurrency: until its send begins, a
        # crash would leave the item looking interrupted mid-send (store.outbox).
        for item in items:
            task = asyncio.create_task(self._deliver_direct(item))
            self._direct.add(task)
            task.add_done_callback(self._direct.discard)

    async def settled(self) -> None:
        """Wait for the items handed over so far to be sent and settled."""
        if self._direct:
            await asyncio.wait(set(self._direct))

    async def _deliver_direct(self, item: OutboxItem) -> None:
        try:
            await self._attempt(Claim(item=item, attempt=1, stale=False, direct=True))
        except INFRA_ERRORS as exc:
            # Left claimed: recovered from the retry set once the claim runs out.
            metrics.REDIS_ERRORS.labels("outbox").inc()
            await self.outage.failed(exc)
        except Exception:
            log.exception("delivering %s failed unexpectedly", item.outbox_id)

    def _move_after(self, delay: float) -> None:
        """Move this process's retry onto the stream when it is due, whatever the loop is
        waiting for: the read it blocks in returns as soon as the entry lands."""
        task = asyncio.create_task(self._move_later(delay))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _move_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self.store.move_due()
        except INFRA_ERRORS:
            return  # the loop's own look (OutboxStore.next_retry) moves it later

    # ---- the stream -----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        moves = SweepPace(self.settings.retry_poll_s)
        reclaims = SweepPace(self.settings.claim_ms / 2000)
        ready = False
        while not stop.is_set():
            free = self.settings.concurrency - len(tasks)
            if free <= 0:
                await asyncio.wait(tasks, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
                continue
            entries: list[Entry] = []
            try:
                if not ready:
                    await self.stream.ensure_group()
                    await self.store.setup()
                    ready = True
                    self.serve_direct()
                if moves.due(loop.time()) or time.time() >= self.store.next_retry:
                    now = loop.time()
                    self.store.next_retry = float("inf")  # looked now; retries set it again
                    moves.swept(now, found=await self.store.move_due() > 0)
                if reclaims.due(loop.time()):
                    now = loop.time()
                    entries = await self.stream.reclaim(self.name, self.settings.claim_ms, free)
                    reclaims.swept(now, found=bool(entries))
                if not entries:
                    until = min(moves.until(loop.time()), self.store.next_retry - time.time())
                    wait_ms = min(self.settings.block_ms, int(max(until, 0.0) * 1000))
                    read = self.stream.read(self.name, free, block_ms=max(wait_ms, 1))
                    entries = await unless_stopped(read, stop)
            except INFRA_ERRORS as exc:
                await self.outage.wait(exc, stop)  # Redis is away: wait it out
                continue
            self.outage.ok()
            if entries or tasks or self._direct:  # at work: the sweeps at their normal pace
                moves.busy()
                reclaims.busy()
            for entry in entries:
                task = asyncio.create_task(self.deliver(entry))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        self._open = False  # commits from here on (a worker draining) go to the stream
        for timer in self._timers:
            timer.cancel()  # the retries stay scheduled: any dispatcher moves them
        await self.stream.close()
        if tasks or self._direct:
            await asyncio.wait(tasks | self._direct, timeout=10)

    async def deliver(self, entry: Entry) -> None:
        def ack(pipe: aioredis.client.Pipeline) -> None:
            self.stream.ack_into(pipe, entry)

        try:
            outcome = await self.deliver_item(entry.fields["t"], entry.fields["o"], ack=ack)
            # 'busy': another sender's claim is live. Left pending, the pointer comes back
            # once that claim has run out: if its holder died (a recovered direct claim met
            # early, on a host whose clock runs ahead), this pointer is what delivers it.
            if outcome == "done":
                await self.stream.ack(entry)
        except INFRA_ERRORS as exc:
            # Left pending, like any failure below: reclaimed once the claim runs out.
            metrics.REDIS_ERRORS.labels("outbox").inc()
            await self.outage.failed(exc)
        except Exception:
            # Left pending: the entry is reclaimed and tried again after the claim runs out.
            log.exception("delivering %s failed unexpectedly", entry.fields)

    async def deliver_item(
        self, thread_id: str, outbox_id: str, ack: Then | None = None
    ) -> Literal["settled", "done", "busy"]:
        """Deliver one item unless it is done or another sender holds it.

        ``ack`` rides along with the write that settles the item. Returns 'settled' (and
        ``ack`` went with it), 'done' (done or missing already: the caller acknowledges on
        its own) or 'busy' (another sender's claim is live).
        """
        claim = await self.store.claim(thread_id, outbox_id, self.settings.claim_ms)
        if claim is None:
            return "done"
        if claim == "busy":
            return "busy"
        await self._attempt(claim, ack)
        return "settled"

    async def _attempt(self, claim: Claim, ack: Then | None = None) -> None:
        """Send a claimed item and settle it: sent, retried later, or given up."""
        item = claim.item
        sender = self.senders.get(item.to.channel)
        if sender is None:
            error = f"channel {item.to.channel!r} is not enabled"
            await self.store.give_up(item, "failed", error, ack, claim=claim)
            deliveries.gave_up(item, "failed", error)
            return
        try:
            # A repeat: the earlier attempt may have gone out (a dropped answer, a crash).
            found = None
            if (claim.stale or claim.attempt > 1) and isinstance(sender, Finds):
                found = await sender.find(item)
            if found is not None:
                await self.store.sent(item, found, ack, claim=claim)
                deliveries.found(item, found)
                return
            if claim.stale and not sender.resend_when_unknown:
                error = "an earlier attempt was interrupted; not sent again"
                await self.store.give_up(item, "unknown", error, ack, claim=claim)
                deliveries.gave_up(item, "unknown", error)
                return
            delivery = await deliveries.send(sender, item, self.store.redis)
        except SendFailed as exc:
            if exc.transient and claim.attempt < self.settings.max_attempts:
                delay = self._delay(claim.attempt, exc.retry_after)
                await self.store.retry(item, exc.error, delay, ack)
                deliveries.retrying(item, exc.error, delay)
                self._move_after(delay)
            else:
                status = "unknown" if exc.unknown else "failed"
                await self.store.give_up(item, status, exc.error, ack, claim=claim)
                deliveries.gave_up(item, status, exc.error)
            return
        await self.store.sent(item, delivery, ack, claim=claim)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.settings.max_delay)
        backoff = self.settings.base_delay * 2.0 ** (attempt - 1)
        jitter: float = random.uniform(0.8, 1.2)
        return min(backoff, self.settings.max_delay) * jitter
