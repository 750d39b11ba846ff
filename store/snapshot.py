"""The stored side of a thread's snapshot: the log before its position, on demand.

The acquire script returns the log from the snapshot's position on, with the snapshot's
body (``Lease.base``, ``Lease.snapshot``); the commit script writes a new one under the
lease (``ThreadStore.commit(snapshot=...)``). What a snapshot holds, and how it is built
from the log, is the agent's business (``agent.snapshot``): here it is opaque bytes.
The log stays the source of truth: when a snapshot cannot be read, its holder loads the
part of the log it covers and builds it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from model.events import Event, load_events
from store import keys


@dataclass(frozen=True)
class Stored:
    """A snapshot as stored: the log position it covers and its body."""

    upto: int
    body: bytes


async def log_before(client: aioredis.Redis, thread_id: str, upto: int) -> list[Event]:
    """The log's first ``upto`` events: what a lease's tail leaves out (the lease holder
    reads it; only that holder writes the log, so the two parts join up)."""
    if upto <= 0:
        return []
    raw = await client.lrange(keys.events(thread_id), 0, upto - 1)
    return load_events([r if isinstance(r, bytes) else r.encode() for r in raw])


async def stored(client: aioredis.Redis, thread_id: str) -> Stored | None:
    """The thread's stored snapshot, if any (for checks and tests)."""
    upto, body = await client.hmget(
        keys.snapshot(thread_id), keys.SNAPSHOT_UPTO, keys.SNAPSHOT_BODY
    )
    if upto is None or body is None:
        return None
    return Stored(int(upto), body if isinstance(body, bytes) else body.encode())
