"""How many partitions the shared streams and indexes have, and which one an id falls in.

One setting for the whole deployment, ``SWITCHBOARD_PARTITIONS``, read from the environment
by every process (API, workers, senders): they must agree, as a producer writes to the
partition of an id and every consumer reads all partitions. Unset, it is 1 on a single
server (the keys of before, nothing changes) and ``CLUSTER_DEFAULT`` on a Redis Cluster.
Lowering it strands what waits in the partitions dropped; raise it freely.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Callable

from redis.asyncio.cluster import RedisCluster

from store import keys

ENV = "SWITCHBOARD_PARTITIONS"
CLUSTER_DEFAULT = 12
"""Partitions on a cluster when unset: a few per shard for up to four shards, so the load
spreads even though which shard a partition's slot lands on is the cluster's choice."""
MAX = 1024


def count(client: object) -> int:
    """The number of partitions for a store on ``client``."""
    return _parse(os.environ.get(ENV), isinstance(client, RedisCluster))


@functools.lru_cache(maxsize=8)
def _parse(raw: str | None, cluster: bool) -> int:
    if raw is None or raw.strip() == "":
        return CLUSTER_DEFAULT if cluster else 1
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{ENV}={raw!r}: not a whole number") from None
    if not 1 <= n <= MAX:
        raise ValueError(f"{ENV}={n}: must be between 1 and {MAX}")
    return n


def of(ident: str, n: int) -> int:
    """The partition of a thread or request id: CRC-32, stable across processes and hosts
    (Python's own hash() is salted per process)."""
    return 0 if n == 1 else zlib.crc32(ident.encode()) % n


class Shared:
    """The shared keys of a store: which partition's key an id's entry goes to, and all of
    them for the readers that merge partitions."""

    def __init__(self, client: object) -> None:
        self.n = count(client)

    def runs(self, thread_id: str) -> str:
        return keys.runs(of(thread_id, self.n))

    def outbox(self, thread_id: str) -> str:
        return keys.outbox_stream(of(thread_id, self.n))

    def outbox_retry(self, thread_id: str) -> str:
        return keys.outbox_retry(of(thread_id, self.n))

    def threads(self, thread_id: str) -> str:
        return keys.threads(of(thread_id, self.n))

    def pending(self, request_id: str) -> str:
        return keys.pending(of(request_id, self.n))

    def request_thread(self, request_id: str) -> str:
        return keys.request_thread(of(request_id, self.n))

    def deadlines(self, request_id: str) -> str:
        return keys.deadlines(of(request_id, self.n))

    def every(self, key: Callable[[int], str]) -> list[str]:
        """The key of every partition, partition 0 first."""
        return [key(p) for p in range(self.n)]
