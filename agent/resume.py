"""Where a run starts from: the thread's snapshot and the log after it, or the whole log.

``Resume.of(lease)`` reads the snapshot the lease came with; ``load`` reads the rest of the
log when that snapshot cannot serve the run (another format, prompt version, budget or
counting, or unreadable); ``after`` says what the releasing commit stores as the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent import snapshot, tokens
from agent.fitting import NO_PRIOR, Prior
from agent.snapshot import Snapshot
from agent.tools import Agent
from model.events import Event
from store.snapshot import Stored, log_before
from store.threads import Lease, ThreadStore


@dataclass(frozen=True)
class Resume:
    """The run's view of the log: ``events`` are the snapshot's carried events, then the tail."""

    snapshot: Snapshot | None
    events: list[Event]
    skip: int
    """How many of ``events`` are carried (shown to the model only through the snapshot)."""
    base: int
    """Where the tail starts in the log."""

    @classmethod
    def of(cls, lease: Lease) -> Resume:
        snap = snapshot.parse(lease.snapshot) if lease.base else None
        carried = snap.carried if snap else []
        return cls(snap, [*carried, *lease.events], len(carried), lease.base)

    def usable(self, agent: Agent, counter: tokens.Counter | None = None) -> bool:
        """False: the tail alone does not do, the whole log must be read (``load``)."""
        if not self.base:
            return True  # the whole log already
        return self.snapshot is not None and self.snapshot.fits(agent, counter or tokens.counter())

    async def load(self, store: ThreadStore, thread_id: str) -> Resume:
        """The whole log: the snapshot is built again from it at the next release."""
        head = await log_before(store.redis, thread_id, self.base)
        return Resume(None, [*head, *self.events[self.skip :]], 0, 0)

    def prior(self) -> Prior:
        return self.snapshot.prior() if self.snapshot else NO_PRIOR

    def after(self, agent: Agent, events: list[Event]) -> Stored | None:
        """The snapshot to store with the releasing commit (None: it stays as it is).

        ``events`` are the run's: these ``events``, then what it appended and merged."""
        nxt = snapshot.advance(agent, self.snapshot, events)
        return nxt.stored() if nxt else None
