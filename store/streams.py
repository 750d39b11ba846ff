"""Work queues as Redis Streams with consumer groups, one stream per partition.

An entry stays pending until its consumer acknowledges it; a consumer that dies leaves it
pending, and another takes it over with XAUTOCLAIM once it has been idle long enough.
Producers write to the partition of the entry's thread (store.partitions); every consumer
reads all partitions, and acknowledges an entry on the stream it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from store import partitions

PARTITION_BLOCK_MS = 2_000
"""With several partitions, how long each partition's read waits inside Redis. read() returns
after its own ``block_ms`` all the same (the caller's loop has other work on a schedule),
leaving the reads in flight: an idle consumer costs one call per partition per this long,
not per ``block_ms``. Below redis-py's cluster socket timeout (5 s)."""


@dataclass(frozen=True)
class Entry:
    entry_id: str
    fields: dict[str, str]
    key: str
    """The stream (partition) the entry is on."""


class WorkStream:
    """A stream per partition, each with the same consumer group."""

    def __init__(self, client: aioredis.Redis, key: Callable[[int], str], group: str) -> None:
        self._r = client
        self.keys: Sequence[str] = [key(p) for p in range(partitions.count(client))]
        self.group = group
        # With several partitions: one blocking read per partition, kept across calls of
        # read(), so an entry on any partition wakes the consumer at once and a read that
        # has not answered yet is not sent again (see read).
        self._waiting: dict[str, asyncio.Task[list[Entry]]] = {}

    def key_of(self, thread_id: str) -> str:
        """The stream a thread's entries go to."""
        return self.keys[partitions.of(thread_id, len(self.keys))]

    async def ensure_group(self) -> None:
        for key in self.keys:
            try:
                await self._r.xgroup_create(key, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """New entries for this consumer; waits up to ``block_ms`` when there are none.

        With several partitions, the reads of partitions that had nothing stay in flight
        for the next call (see PARTITION_BLOCK_MS); each reads up to ``count``, so a consumer
        may be handed up to partitions x ``count`` entries at once after a quiet spell.
        """
        if len(self.keys) == 1:
            return await self._read(self.keys[0], consumer, count, block_ms)
        wait_ms = max(block_ms, PARTITION_BLOCK_MS)
        for key in self.keys:
            if key not in self._waiting:
                self._waiting[key] = asyncio.create_task(self._read(key, consumer, count, wait_ms))
        await asyncio.wait(
            self._waiting.values(), timeout=block_ms / 1000, return_when=asyncio.FIRST_COMPLETED
        )
        entries: list[Entry] = []
        error: BaseException | None = None
        for key, task in list(self._waiting.items()):
            if task.done():
                del self._waiting[key]
                if task.exception() is not None:
                    error = error or task.exception()
                else:
                    entries += task.result()
        if error is not None and not entries:
            raise error
        return entries

    async def close(self) -> None:
        """Drop the reads in flight (a read cut off leaves what it took pending: reclaimed
        later, as after a crash)."""
        for task in self._waiting.values():
            task.cancel()
        for task in self._waiting.values():
            with contextlib.suppress(BaseException):
                await task
        self._waiting.clear()

    async def _read(self, key: str, consumer: str, count: int, block_ms: int) -> list[Entry]:
        reply: Any = await self._r.xreadgroup(
            self.group, consumer, {key: ">"}, count=count, block=block_ms
        )
        if not reply:
            return []
        # RESP2 answers [[stream, entries]]; RESP3 answers {stream: [entries]}.
        batch = next(iter(reply.values()))[0] if isinstance(reply, dict) else reply[0][1]
        return [_entry(key, eid, fields) for eid, fields in batch if fields]

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Take over entries another consumer left unacknowledged for ``min_idle_ms``."""
        pipe = self._r.pipeline(transaction=False)
        for key in self.keys:
            pipe.xautoclaim(
                key, self.group, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count
            )
        replies: list[Any] = await pipe.execute()
        # Entries deleted while pending come back as None fields; they are acknowledged away.
        entries: list[Entry] = []
        gone: dict[str, list[Any]] = {}
        for key, reply in zip(self.keys, replies, strict=True):
            for eid, fields in reply[1]:
                if fields:
                    entries.append(_entry(key, eid, fields))
                else:
                    gone.setdefault(key, []).append(eid)
        for key, ids in gone.items():
            await self._r.xack(key, self.group, *ids)
        return entries

    async def add(self, fields: dict[str, str]) -> None:
        """Put a new entry on the stream of its thread's partition (a wake-up, a pointer)."""
        await self._r.xadd(self.key_of(fields["t"]), fields)  # type: ignore[arg-type]

    async def touch(self, consumer: str, entry: Entry) -> None:
        """Reset an entry's idle time, so a long run is not mistaken for a dead one."""
        await self._r.xclaim(entry.key, self.group, consumer, 0, [entry.entry_id], justid=True)

    def ack_into(self, pipe: aioredis.client.Pipeline, entry: Entry) -> None:
        """Acknowledge and delete an entry as part of a caller's pipeline."""
        pipe.xack(entry.key, self.group, entry.entry_id)
        pipe.xdel(entry.key, entry.entry_id)

    async def ack(self, entry: Entry) -> None:
        pipe = self._r.pipeline(transaction=False)
        self.ack_into(pipe, entry)
        await pipe.execute()


async def unless_stopped(
    read: Coroutine[Any, Any, list[Entry]], stop: asyncio.Event
) -> list[Entry]:
    """A long blocking read that a stop cuts short (what it took stays pending: reclaimed
    later, as after a crash)."""
    task = asyncio.ensure_future(read)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return []
    return task.result()


def _entry(key: str, entry_id: bytes | str, fields: dict[bytes, bytes] | dict[str, str]) -> Entry:
    def text(v: bytes | str) -> str:
        return v.decode() if isinstance(v, bytes) else v

    return Entry(text(entry_id), {text(k): text(v) for k, v in fields.items()}, key)
