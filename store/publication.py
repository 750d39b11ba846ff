"""A commit's writes to shared keys, run inside the commit script where the server allows.

What a commit publishes (new requests in the pending and deadline indexes, timers, outbox
pointers for the senders) and the run's stream acknowledgement live on shared keys, outside
the thread's hash tag. On a Redis Cluster they sit on other slots, so they follow the commit
in a pipeline of their own, and the commit leaves an ``unpublished`` marker that the next
run repeats should the process die between the two. On a single server with one partition
every key is on the one server: the commit script runs them itself, after its lease check
and only if that passed, so the commit and its publication are one atomic round trip and
no marker is needed.

Ops are four arguments each, ``op key_index a b``; ``key_index`` points into the script's
KEYS, which start with the thread's seven (scripts.COMMIT).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from model.ids import thread_of_request
from store import keys
from store.partitions import Shared
from store.streams import Entry, WorkStream

_THREAD_KEYS = 7
"""KEYS the commit script names before the shared ones (state ... outbox, snapshot)."""


def runs_inline(client: aioredis.Redis, shared: Shared) -> bool:
    """Whether a commit on ``client`` may write its shared keys itself."""
    return shared.n == 1 and not isinstance(client, RedisCluster)


class Ops:
    """Shared-key writes for the commit script, with the KEYS they name."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.args: list[Any] = []

    def _key(self, key: str) -> int:
        if key not in self.keys:
            self.keys.append(key)
        return _THREAD_KEYS + self.keys.index(key) + 1

    def add(self, op: str, key: str, a: Any, b: Any) -> None:
        self.args += [op, self._key(key), a, b]

    def publication(self, shared: Shared, thread_id: str, publication: Mapping[str, Any]) -> None:
        """What ``ThreadStore.publish_into`` writes, as ops (the same keys, the same values)."""
        for rid, created_ms, deadline_ms in publication.get("requests", []):
            self.add("zadd", shared.pending(rid), created_ms, rid)
            if thread_of_request(rid) is None:  # an id that does not name its thread
                self.add("hset", shared.request_thread(rid), rid, thread_id)
            if deadline_ms:
                self.add("zadd", shared.deadlines(rid), deadline_ms, rid)
        for member, due_ms in publication.get("timers", []):
            self.add("zadd", keys.TIMERS, due_ms, member)
        for oid in publication.get("outbox", []):
            self.add("xadd", shared.outbox(thread_id), thread_id, oid)
        for member, due_ms in publication.get("recover", []):
            # Scored by the claim's deadline (the server's time as the holder knows it).
            self.add("zadd", shared.outbox_retry(thread_id), due_ms, member)

    def ack(self, ack: tuple[WorkStream, Entry]) -> None:
        """Acknowledge the run's entry, if (and only if) the commit released; the stream's
        next trim deletes it (WorkStream.trim)."""
        stream, entry = ack
        self.add("ack", entry.key, stream.group, entry.entry_id)
        stream.acked_in_commit(entry)

    def argv(self) -> list[Any]:
        return [len(self.args), *self.args]
