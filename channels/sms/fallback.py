"""When a phone cannot be reached (STOP, a failed delivery), its pending approval moves on.

The request goes to the thread's origin channel (the Slack thread, the email, the REST
caller), or, when the phone *is* the origin, the thread records an escalation. Writing an
outbox item needs the thread's lease: this takes it briefly, like a worker would, writes a
note and the item in one fenced commit, releases it, and wakes a worker for anything that
arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from agent.events import SystemNote
from store import keys as core_keys
from store.errors import RequestNotFound, ThreadNotFound
from store.ids import new_id
from store.models import Origin, OutboxItem
from store.threads import Lease, ThreadStore

log = logging.getLogger("switchboard.sms")

LEASE_MS = 10_000


class Fallback:
    def __init__(self, store: ThreadStore, *, patience: float = 60.0, pause: float = 0.05) -> None:
        self.store = store
        self.patience = patience
        """How long to wait for a running worker to release the thread."""
        self.pause = pause
        self._tasks: set[asyncio.Task[None]] = set()

    def soon(
        self,
        request_id: str,
        unreachable: Origin,
        reason: str,
        *,
        after: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Reroute in the background (a webhook answers at once); ``after`` is polled first
        until it says the moment has come (e.g. the failed send has been recorded)."""
        task = asyncio.create_task(self._later(request_id, unreachable, reason, after))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(
        self,
        request_id: str,
        unreachable: Origin,
        reason: str,
        after: Callable[[], Awaitable[bool]] | None,
    ) -> None:
        try:
            if after is not None:
                for _ in range(int(self.patience / self.pause)):
                    if await after():
                        break
                    await asyncio.sleep(self.pause)
            await self.reroute(request_id, unreachable, reason)
        except Exception:
            log.exception("rerouting request %s failed", request_id)

    async def reroute(self, request_id: str, unreachable: Origin, reason: str) -> bool:
        """Send a pending approval to its thread's origin instead. False: nothing to do."""
        try:
            view = await self.store.request(request_id)
        except RequestNotFound:
            return False
        if view.status != "pending":
            return False
        record = view.request
        lease = await self._acquire(record.thread_id)
        if lease is None:
            log.warning(
                "request %s: thread %s stayed busy; not rerouted", request_id, record.thread_id
            )
            return False
        if lease.unpublished:
            await self.store.publish(lease.thread_id, lease.unpublished)
        origin = lease.meta.origin
        same = origin.channel == unreachable.channel and origin.address == unreachable.address
        outbox = []
        who = ", ".join(record.approvers) or "anyone"
        if same:
            text = f"{reason}. Approval {request_id} needs an approver on another channel."
        else:
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
        result = await self.store.commit(
            lease,
            ttl_ms=LEASE_MS,
            events=[SystemNote(kind="escalation", text=text)],
            outbox=outbox,
            release=True,
        )
        while not result.released:  # something arrived just now: merge it, then let go
            result = await self.store.commit(lease, ttl_ms=LEASE_MS, release=True)
        # Whatever the commit merged from the inbox is the worker's to act on.
        await self.store.redis.xadd(core_keys.RUNS, {"t": lease.thread_id})
        return True

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

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
