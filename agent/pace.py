"""How often a loop sweeps the shared schedules: at its normal pace while there is work,
less and less often while its sweeps find nothing and this process sees no work.

An idle process would otherwise look at every partition of every schedule (abandoned
stream entries, request deadlines, timers, outbox retries) at the pace a busy one needs:
on a cluster, a command per partition per look. What a process sets itself it is cued to
look at when due (ThreadStore.next_due_ms, OutboxStore.next_retry), so the stretch only
delays what others left behind: an entry of a worker that died, a deadline or retry set by
a process that has gone since. Any work this process sees brings the normal pace back.
"""

from __future__ import annotations

IDLE_STRETCH = 8
"""An idle process sweeps up to this many times less often than a busy one (each sweep that
finds nothing doubles the interval up to it)."""


class SweepPace:
    """When a loop's next sweep is due, on the loop's clock (seconds)."""

    def __init__(self, every: float, stretch: int = IDLE_STRETCH) -> None:
        self.every = every
        self.longest = every * stretch
        self.interval = every
        self.last = float("-inf")

    def due(self, now: float) -> bool:
        return now - self.last >= self.interval

    def until(self, now: float) -> float:
        """Seconds from ``now`` to the next sweep (0 when it is due)."""
        return max(0.0, self.last + self.interval - now)

    def swept(self, now: float, *, found: bool) -> None:
        """A sweep ran at ``now``: the normal pace again if it found something, else a
        longer wait."""
        self.last = now
        self.interval = self.every if found else min(self.interval * 2, self.longest)

    def busy(self) -> None:
        """This process saw work: the next sweep comes at the normal pace after the last."""
        self.interval = self.every
