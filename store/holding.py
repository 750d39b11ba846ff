"""What a lease holder keeps in memory about the threads it holds, so as not to ask Redis.

A thread's execution state is written only by its lease holder, and its meta only when it is
created, so the holder knows both as stored without reading them again: a commit sends only
the state fields that changed and knows the server's time; an acquire of a thread leased
before skips its meta.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from model.records import ThreadMeta
from store import keys
from telemetry import tracing

CLOCK_FRESH_S = 10.0
"""How long an acquire trusts the server's time it learnt from an earlier TIME (advanced by
this host's monotonic clock) before it asks TIME again: bounds how long a step of the
server's clock goes unnoticed."""


class ServerClock:
    """The server's time as this process knows it from an acquire's TIME: behind it by the
    reply's way back at most, so a lease deadline set from it is early, never late; and a
    holder's lease judged by it looks alive a moment longer, never shorter. Fencing is by
    token either way (scripts.COMMIT); deadlines only say when a reclaim may take over."""

    def __init__(self, fresh_s: float = CLOCK_FRESH_S) -> None:
        self.fresh_s = fresh_s
        self._server_ms = 0
        self._at = float("-inf")

    def now_ms(self) -> int | None:
        """The estimate, or None when it is too old to use (ask TIME)."""
        since = time.monotonic() - self._at
        if since > self.fresh_s:
            return None
        return self._server_ms + int(since * 1000)

    def sample(self, server_ms: int, received: float) -> None:
        """A TIME the server answered, as of ``received`` (``time.monotonic()``)."""
        self._server_ms, self._at = server_ms, received


class MetaCache:
    """The meta of threads this process leased lately, so their next acquire does not read it.

    A thread's meta is written when it is created; after that only a trace context may be
    added to it (scripts.INBOUND's HSETNX), so a cached meta without one is not used while
    this process traces. Threads are never deleted: a thread this process leased has its
    state hash, which the acquire checks instead.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._metas: OrderedDict[str, tuple[dict[str, str], ThreadMeta]] = OrderedDict()
        """Each meta as read, and as parsed from it (frozen: one object serves every lease)."""

    def get(self, thread_id: str) -> tuple[dict[str, str], ThreadMeta] | None:
        cached = self._metas.get(thread_id)
        if cached is None or (keys.META_TRACE not in cached[0] and tracing.enabled()):
            return None
        self._metas.move_to_end(thread_id)
        return cached

    def put(self, thread_id: str, meta: dict[str, str], parsed: ThreadMeta) -> None:
        self._metas[thread_id] = (meta, parsed)
        self._metas.move_to_end(thread_id)
        if len(self._metas) > self.size:
            self._metas.popitem(last=False)


@dataclass
class Held:
    """What the lease holder knows of its own writes, so a commit sends only what changed.

    Only the lease holder writes the thread's execution state, so the state as it last wrote
    it (or found it on acquiring) is the state stored. The lease's deadline is renewed by a
    commit only once half its length has passed since the last renewal this process sent
    (the heartbeat renews it too, every third of it: agent.worker): measured on this host's
    monotonic clock from when the renewal was sent, so never later than the server's.
    """

    state: dict[str, str]
    renewed: float
    """``time.monotonic()`` when the acquire or the last renewal was sent."""
    layout: bool = False
    """The thread keeps its ledger in its state hash (keys.LAYOUT)."""
    server_ms: int = 0
    """The server's time (ms) in the acquire's reply, ..."""
    received: float = 0.0
    """... and ``time.monotonic()`` when that reply arrived."""

    def now_ms(self) -> int:
        """The server's time now, as far as the holder can tell without asking: behind it
        by the reply's way back at most, so a deadline set from it is early, never late."""
        return self.server_ms + int((time.monotonic() - self.received) * 1000)

    def changed(self, state: Mapping[str, str | int]) -> dict[str, str | int]:
        return {k: v for k, v in state.items() if self.state.get(k) != str(v)}

    def renew_due(self, ttl_ms: int) -> bool:
        return time.monotonic() - self.renewed >= ttl_ms / 2000

    def wrote(self, state: Mapping[str, str | int]) -> None:
        self.state.update((k, str(v)) for k, v in state.items())
