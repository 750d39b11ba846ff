"""When a phone cannot be reached (STOP, a failed delivery), its pending approval moves on.

The request goes to the thread's origin channel (the Slack thread, the email, the REST
caller), or, when the phone *is* the origin, the thread records an escalation. Writing an
outbox item needs the thread's lease: this takes it briefly, like a worker would, writes a
note and the item in one fenced commit, releases it, and wakes a worker for anything that
arrived meanwhile.

A reroute is recorded in Redis before it is attempted and removed once done: a background
task does it at once, and a sweeper (the channel's listener) repeats what a crash or a
long-busy thread left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channels.sms import keys
from model.events import Event, SystemNote
from model.ids import new_id
from model.records import Origin, OutboxItem
from store import keys as core_keys
from store.errors import RequestNotFound, ThreadNotFound
from store.threads import Lease, ThreadStore

log = logging.getLogger("switchboard.sms")

LEASE_MS = 10_000


@dataclass(frozen=True)
class Reroute:
    request_id: str
    unreachable: Origin
    reason: str

    def dump(self) -> str:
        return json.dumps(
            {
                "request_id": self.request_id,
                "channel": self.unreachable.channel,
                "address": self.unreachable.address,
                "reason": self.reason,
            },
            sort_keys=True,
        )

    @classmethod
    def load(cls, raw: bytes | str) -> Reroute:
        data = json.loads(raw)
        return cls(
            data["request_id"],
            Origin(channel=data["channel"], address=data["address"]),
            data["reason"],
        )


class Fallback:
    def __init__(
        self,
        store: ThreadStore,
        *,
        patience: float = 30.0,
        pause: float = 0.05,
        sweep_every: float = 30.0,
    ) -> None:
        self.store = store
        self.redis = store.redis
        self.patience = patience
        """How long one attempt waits for a running worker to release the thread."""
        self.pause = pause
        self.sweep_every = sweep_every
        self._tasks: set[asyncio.Task[None]] = set()

    async def soon(
        self,
        request_id: str,
        unreachable: Origin,
        reason: str,
        *,
        after: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Record the reroute, then do it in the background (a webhook answers at once);
        ``after`` is polled first until it says the moment has come (e.g. the failed send
        has been recorded)."""
        job = Reroute(request_id, unreachable, reason)
        await self.redis.zadd(keys.REROUTES, {job.dump(): await self._now_ms() + self._retry_ms})
        task = asyncio.create_task(self._later(job, after))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def _retry_ms(self) -> int:
        return int((self.patience + self.sweep_every) * 1000)

    async def _now_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def _later(self, job: Reroute, after: Callable[[], Awaitable[bool]] | None) -> None:
        try:
            if after is not None:
                for _ in range(int(self.patience / self.pause)):
                    if await after():
                        break
                    await asyncio.sleep(self.pause)
            await self._attempt(job)
        except Exception:
            log.exception("rerouting request %s failed; the sweeper will retry", job.request_id)

    async def _attempt(self, job: Reroute) -> None:
        if await self.reroute(job.request_id, job.unreachable, job.reason):
            await self.redis.zrem(keys.REROUTES, job.dump())

    async def sweep_once(self, *, now_ms: int | None = None) -> int:
        """Retry the reroutes that are due; how many were tried."""
        now = now_ms if now_ms is not None else await self._now_ms()
        due: Any = await self.redis.zrangebyscore(keys.REROUTES, "-inf", now, start=0, num=100)
        for raw in due:
            job = Reroute.load(raw)
            await self.redis.zadd(keys.REROUTES, {job.dump(): now + self._retry_ms})
            try:
                await self._attempt(job)
            except Exception:
                log.exception("rerouting request %s failed", job.request_id)
        return len(due)

    async def sweep(self, stop: asyncio.Event) -> None:
        """The channel's listener: repeat reroutes left behind, until the service stops."""
        while not stop.is_set():
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweeping SMS reroutes failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.sweep_every)

    async def reroute(self, request_id: str, unreachable: Origin, reason: str) -> bool:
        """Send a pending approval to its thread's origin instead. False: the thread stayed
        busy, try again later; True: done, or nothing left to do."""
        try:
            view = await self.store.request(request_id)
        except RequestNotFound:
            return True
        if view.status != "pending":
            return True
        record = view.request
        lease = await self._acquire(record.thread_id)
        if lease is None:
            log.warning("request %s: thread %s busy; reroute later", request_id, record.thread_id)
            return False
        if lease.unpublished:
            await self.store.publish(lease.thread_id, lease.unpublished)
        marker = f"Approval {request_id} "
        if any(
            isinstance(e, SystemNote) and e.kind == "escalation" and marker in e.text
            for e in lease.events
        ):
            # Moved already (a sweeper racing the first attempt, or a second phone failing):
            # under the lease this check cannot race, so the origin gets it once.
            await self._release(lease)
            return True
        origin = lease.meta.origin
        same = origin.channel == unreachable.channel and origin.address == unreachable.address
        outbox = []
        if same:
            text = f"{reason}. Approval {request_id} needs an approver on another channel."
        else:
            who = ", ".join(record.approvers) or "anyone"
            text = f"{reason}. Approval {request_id} was sent to {origin.channel} instead."
            outbox.append(
                OutboxItem(
                    outbox_id=new_id("out"),
                    thread_id=lease.thread_id,
                    kind="approval",
                    text=f"{record.text} ({reason}; who may approve: {who})",
                    to=origin,
                    request_id=request_id,
                    tool=record.tool,
                    arguments=record.arguments,
                )
            )
        await self._release(lease, events=[SystemNote(kind="escalation", text=text)], outbox=outbox)
        return True

    async def _release(
        self,
        lease: Lease,
        events: list[Event] | None = None,
        outbox: list[OutboxItem] | None = None,
    ) -> None:
        result = await self.store.commit(
            lease, ttl_ms=LEASE_MS, events=events or [], outbox=outbox or [], release=True
        )
        while not result.released:  # something arrived just now: merge it, then let go
            result = await self.store.commit(lease, ttl_ms=LEASE_MS, release=True)
        # Whatever the commits merged from the inbox is the worker's to act on.
        await self.redis.xadd(core_keys.RUNS, {"t": lease.thread_id})

    async def _acquire(self, thread_id: str) -> Lease | None:
        owner = new_id("sms-fallback")
        for _ in range(max(1, int(self.patience / self.pause))):
            try:
                lease = await self.store.acquire(thread_id, owner, LEASE_MS)
            except ThreadNotFound:
                return None
            if lease is not None:
                return lease
            await asyncio.sleep(self.pause)
        return None

    async def idle(self) -> None:
        """Wait for the background attempts under way (tests, orderly shutdown)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
