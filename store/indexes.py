"""Listings over the shared indexes, merged across partitions (store.partitions).

Each partition's index is read in the same pipeline, one round trip whatever the number of
partitions (on a cluster, redis-py sends each node its share at once), and the pieces are
merged by score. With one partition this is the read of before.
"""

from __future__ import annotations

import heapq
from typing import Any

import redis.asyncio as aioredis

from model.ids import thread_of_request
from store import keys
from store.partitions import Shared


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def newest_threads(client: aioredis.Redis, shared: Shared, limit: int) -> list[str]:
    """Thread ids, newest first, at most ``limit``."""
    pipe = client.pipeline(transaction=False)
    for key in shared.every(keys.threads):
        pipe.zrevrange(key, 0, limit - 1, withscores=True)
    merged = heapq.merge(*await pipe.execute(), key=lambda pair: -float(pair[1]))
    return [_text(tid) for tid, _ in list(merged)[:limit]]


async def pending_pairs(
    client: aioredis.Redis, shared: Shared, limit: int
) -> list[tuple[str, str]]:
    """(request id, thread id) of pending requests, oldest first, at most ``limit``.

    One round trip, and a second for ids of earlier versions, which do not name their thread
    (model.ids.request_id_for): the request -> thread maps.
    """
    pipe = client.pipeline(transaction=False)
    for key in shared.every(keys.pending):
        pipe.zrange(key, 0, limit - 1, withscores=True)
    merged = heapq.merge(*await pipe.execute(), key=lambda pair: float(pair[1]))
    ids = [_text(rid) for rid, _ in list(merged)[:limit]]
    if not ids:
        return []
    thread_of: dict[str, Any] = {rid: thread_of_request(rid) for rid in ids}
    groups: dict[str, list[str]] = {}
    for rid in ids:
        if thread_of[rid] is None:  # an id of an earlier version: its thread is indexed
            groups.setdefault(shared.request_thread(rid), []).append(rid)
    if groups:
        pipe = client.pipeline(transaction=False)
        for key, rids in groups.items():
            pipe.hmget(key, rids)
        for rids, tids in zip(groups.values(), await pipe.execute(), strict=True):
            thread_of.update(zip(rids, tids, strict=True))
    return [(rid, _text(thread_of[rid])) for rid in ids if thread_of[rid] is not None]


async def drop_pending(client: aioredis.Redis, shared: Shared, request_ids: list[str]) -> None:
    """Take requests out of the pending index (each from its partition's)."""
    pipe = client.pipeline(transaction=False)
    for rid in request_ids:
        pipe.zrem(shared.pending(rid), rid)
    await pipe.execute()
