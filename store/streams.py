"""Work queues as Redis Streams with consumer groups.

An entry stays pending until its consumer acknowledges it; a consumer that dies leaves it
pending, and another takes it over with XAUTOCLAIM once it has been idle long enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError


@dataclass(frozen=True)
class Entry:
    entry_id: str
    fields: dict[str, str]


class WorkStream:
    """One stream and its consumer group."""

    def __init__(self, client: aioredis.Redis, key: str, group: str) -> None:
        self._r = client
        self.key = key
        self.group = group

    async def ensure_group(self) -> None:
        try:
            await self._r.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """New entries for this consumer; waits up to ``block_ms`` when there are none."""
        reply: Any = await self._r.xreadgroup(
            self.group, consumer, {self.key: ">"}, count=count, block=block_ms
        )
        if not reply:
            return []
        # RESP2 answers [[stream, entries]]; RESP3 answers {stream: [entries]}.
        batch = next(iter(reply.values()))[0] if isinstance(reply, dict) else reply[0][1]
        return [_entry(eid, fields) for eid, fields in batch if fields]

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Take over entries another consumer left unacknowledged for ``min_idle_ms``."""
        reply: Any = await self._r.xautoclaim(
            self.key, self.group, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count
        )
        # Entries deleted while pending come back as None fields; they are acknowledged away.
        entries, gone = [], []
        for eid, fields in reply[1]:
            if fields:
                entries.append(_entry(eid, fields))
            else:
                gone.append(eid)
        if gone:
            await self._r.xack(self.key, self.group, *gone)
        return entries

    async def add(self, fields: dict[str, str]) -> None:
        """Put a new entry on the stream (a wake-up, a pointer)."""
        await self._r.xadd(self.key, fields)  # type: ignore[arg-type]

    async def touch(self, consumer: str, entry_id: str) -> None:
        """Reset an entry's idle time, so a long run is not mistaken for a dead one."""
        await self._r.xclaim(self.key, self.group, consumer, 0, [entry_id], justid=True)

    def ack_into(self, pipe: aioredis.client.Pipeline, entry_id: str) -> None:
        """Acknowledge and delete an entry as part of a caller's pipeline."""
        pipe.xack(self.key, self.group, entry_id)
        pipe.xdel(self.key, entry_id)

    async def ack(self, entry_id: str) -> None:
        pipe = self._r.pipeline(transaction=False)
        self.ack_into(pipe, entry_id)
        await pipe.execute()


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes] | dict[str, str]) -> Entry:
    def text(v: bytes | str) -> str:
        return v.decode() if isinstance(v, bytes) else v

    return Entry(text(entry_id), {text(k): text(v) for k, v in fields.items()})
