"""Gauges read from Redis at scrape time: right whichever process (API or worker) answers.

A count kept in one process's memory would only know what that process saw; the number of
requests waiting for a human is a fact of the shared store, so /metrics reads it from there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Literal, get_args

import redis.asyncio as aioredis

from model.records import RequestRecord
from store import indexes, keys
from store.partitions import Shared
from store.reads import text
from telemetry import metrics

RequestKind = Literal["question", "approval"]


async def pending_counts(client: aioredis.Redis) -> Counter[tuple[str, str]]:
    """Pending requests by (agent, kind), up to ``PENDING_GAUGE_LIMIT`` of them."""
    pairs = await indexes.pending_pairs(client, Shared(client), keys.PENDING_GAUGE_LIMIT)
    pipe = client.pipeline(transaction=False)
    for rid, tid in pairs:
        pipe.hmget(keys.requests(tid), [rid, f"{rid}:status"])
        pipe.hget(keys.meta(tid), "agent")
    replies = await pipe.execute()
    counts: Counter[tuple[str, str]] = Counter()
    for (rid, tid), (record, status), agent in zip(pairs, replies[::2], replies[1::2], strict=True):
        if record is None or agent is None or text(status or b"pending") != "pending":
            continue  # the index lags an answer by a moment; the request's own status rules
        counts[(text(agent), RequestRecord.load(record, request_id=rid, thread_id=tid).kind)] += 1
    return counts


async def refresh(client: aioredis.Redis, agents: Iterable[str]) -> None:
    """Set the pending-requests gauge from Redis (call just before rendering /metrics).

    Every configured agent gets a series, zero included, so a drop to none is visible.
    """
    counts = await pending_counts(client)
    series = {(agent, kind): 0 for agent in agents for kind in get_args(RequestKind)}
    metrics.set_pending(series | counts)
