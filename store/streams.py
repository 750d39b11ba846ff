"""Work queues as Redis Streams with consumer groups, one stream per partition.

An entry stays pending until its consumer acknowledges it; a consumer that dies leaves it
pending, and another takes it over with XAUTOCLAIM once it has been idle long enough.
Producers write to the partition of the entry's thread (store.partitions); every consumer
reads all partitions, and acknowledges an entry on the stream it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from store import partitions
from store.connection import INFRA_ERRORS

_TRIM = """
-- KEYS: stream    ARGV: group
-- Removes the entries every consumer is done with: those before the oldest still pending,
-- or, with none pending, up to the last one delivered (later ones are still to be read).
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local upto = pending[2]
if not upto then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for k = 1, #group, 2 do info[group[k]] = group[k + 1] end
    if info['name'] == ARGV[1] then
      local ms, seq = string.match(info['last-delivered-id'], '^(%d+)-(%d+)$')
      upto = ms .. '-' .. (tonumber(seq) + 1)  -- MINID keeps its own id: the one after
    end
  end
end
if not upto then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', upto)
"""

IDLE_BLOCK_MS = 60_000
"""How long a read of a stream partition waits inside Redis when nothing comes. read()
returns after its own ``block_ms`` all the same (the caller's loop has other work on a
schedule), leaving the reads in flight for its next call: an idle consumer costs one call
per partition per this long, not per ``block_ms``, and an entry still ends the wait at once.
Below the idle timeouts of common load balancers and proxies (4 minutes and more)."""
READ_MARGIN_S = 5.0
"""A blocking read that has not answered this long after its block ran out is taken for a
lost connection (the server or the network went away without closing it)."""
CLOSE_WAIT_S = 1.0
"""How long close() waits for the reads it cancelled. One normally ends at once; at a
shutdown under load one was seen still blocked on its socket after the cancel (its
cancellation not passed on somewhere on redis-py's connection path), which held the
process up for the rest of its 60 s block. Such a read is left to end when the client
closes its connections, which the service does next."""
REDIRECTED = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN")
"""Cluster errors that mean the slot map is stale or changing: the read goes through the
cluster client's own routing, which follows the redirect and refreshes its map."""
ROUTED_BLOCK_MS = 4_000
"""The block of a read sent through the cluster client's routing: below its 5 s socket
timeout, which would cut a longer one off."""


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
        # One blocking read per partition, kept across calls of read(), so an entry on any
        # partition wakes the consumer at once and a read that has not answered yet is not
        # sent again (see read).
        self._waiting: dict[str, asyncio.Task[list[Entry]]] = {}
        self._route: set[str] = set()
        """Partitions whose next read goes through the cluster client's routing (_read)."""
        self._trim = client.register_script(_TRIM)
        self._untrimmed: set[str] = set()
        """Partitions with entries acknowledged but not deleted (acked_in_commit)."""

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

        The reads of partitions that had nothing stay in flight for the next call (see
        IDLE_BLOCK_MS); each reads up to ``count``, so a consumer may be handed up to
        partitions x ``count`` entries at once after a quiet spell.
        """
        for key in self.keys:
            if key not in self._waiting:
                task = asyncio.create_task(self._read(key, consumer, count, IDLE_BLOCK_MS))
                # A read left in flight when its consumer stops without close() (a loop that
                # ended, a test) fails once the server goes: that error is nobody's news.
                task.add_done_callback(_seen)
                self._waiting[key] = task
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
        reads = list(self._waiting.values())
        self._waiting.clear()
        for task in reads:
            task.cancel()
        if reads:  # their errors are nobody's news (_seen)
            await asyncio.wait(reads, timeout=CLOSE_WAIT_S)

    async def _read(self, key: str, consumer: str, count: int, block_ms: int) -> list[Entry]:
        args: tuple[Any, ...] = ("XREADGROUP", "GROUP", self.group, consumer)
        args += ("COUNT", count, "BLOCK", block_ms, "STREAMS", key, ">")
        if key in self._route:
            # After a redirect or a lost connection on a cluster: once through the client's
            # own routing, which refreshes its slot map on the way.
            self._route.discard(key)
            reply: Any = await self._r.xreadgroup(
                self.group, consumer, {key: ">"}, count=count, block=min(block_ms, ROUTED_BLOCK_MS)
            )
            return _entries(key, reply, parsed=True)
        try:
            reply = await self._blocking(key, args, block_ms / 1000 + READ_MARGIN_S)
        except ResponseError as exc:
            if not str(exc).startswith(REDIRECTED):
                raise
            self._route.add(key)
            return []
        except INFRA_ERRORS:
            if isinstance(self._r, RedisCluster):
                self._route.add(key)
            raise
        return _entries(key, reply)

    async def _blocking(self, key: str, args: tuple[Any, ...], timeout_s: float) -> Any:
        """Send a blocking command on a connection of its own from the pool of the node that
        holds ``key``, and wait up to ``timeout_s`` for the answer.

        Not through the client's ``execute_command``: its read timeout is the socket's (5 s),
        and on a cluster it would first ask the server where the keys of ``XREADGROUP`` are
        (COMMAND GETKEYS: its keys follow STREAMS, which the command table cannot say),
        twice a read. Here the key is known and its slot is the client's own arithmetic.
        """
        if isinstance(self._r, RedisCluster):
            node = self._r.get_node_from_key(key)
            conn = node.acquire_connection()
            try:
                await node.disconnect_if_needed(conn)
                return await _send_and_wait(conn, args, timeout_s)
            finally:
                node.release(conn)
        pool = self._r.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            return await _send_and_wait(conn, args, timeout_s)
        finally:
            await pool.release(conn)

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

    def acked_in_commit(self, entry: Entry) -> None:
        """The entry is acknowledged by a commit, which leaves it on the stream (XDEL was
        a command a run): ``trim`` removes it with every other such entry."""
        self._untrimmed.add(entry.key)

    async def trim(self) -> int:
        """Delete the entries of the partitions with commit-acknowledged ones that no
        consumer needs any more (the worker's maintenance round; nothing when idle)."""
        removed = 0
        for key in sorted(self._untrimmed):
            self._untrimmed.discard(key)
            removed += int(await self._trim(keys=[key], args=[self.group]))
        return removed

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


def _seen(task: asyncio.Task[list[Entry]]) -> None:
    if not task.cancelled():
        task.exception()


async def _send_and_wait(conn: Any, args: tuple[Any, ...], timeout_s: float) -> Any:
    """One command and its reply on ``conn``; a reply that does not come within
    ``timeout_s`` is a lost connection (closed: the reply may still come on it)."""
    await conn.send_command(*args)
    try:
        async with asyncio.timeout(timeout_s):
            # inf: no read timeout of redis-py's own (the socket's 5 s); ours is around it.
            return await conn.read_response(timeout=math.inf)
    except TimeoutError:
        await conn.disconnect()
        raise RedisTimeoutError(f"no answer to {args[0]} within {timeout_s:g} s") from None


def _entries(key: str, reply: Any, *, parsed: bool = False) -> list[Entry]:
    """The entries of an XREADGROUP reply on one stream (none when its block ran out): as
    Redis sends it, or as redis-py's callback ``parsed`` it (each batch in a list)."""
    if not reply:
        return []
    # RESP2 answers [[stream, entries]]; RESP3 answers {stream: entries}.
    batch = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    if parsed and isinstance(reply, dict):
        batch = batch[0]
    return [_entry(key, eid, fields) for eid, fields in batch if fields]


def _entry(key: str, entry_id: bytes | str, fields: Any) -> Entry:
    """An entry from its id and fields: a mapping (a reply redis-py parsed) or the flat
    list of names and values Redis sends."""

    def text(v: bytes | str) -> str:
        return v.decode() if isinstance(v, bytes) else v

    pairs = (
        fields.items() if isinstance(fields, dict) else zip(fields[::2], fields[1::2], strict=True)
    )
    return Entry(text(entry_id), {text(k): text(v) for k, v in pairs}, key)
