"""Reading threads and requests: what the API, the console and the channels look at.

Reads take no lease: they see the log as last committed, plus the inbox not yet merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import redis.asyncio as aioredis

from model.events import load_events
from model.records import (
    DeliveryStatus,
    Origin,
    OutboxItem,
    OutboxView,
    RequestRecord,
    RequestStatus,
    RequestView,
    ThreadMeta,
    ThreadState,
    ThreadSummary,
    ThreadView,
)
from store import keys
from store.errors import RequestNotFound, ThreadNotFound
from telemetry import logs


def text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def flat_hash(flat: Sequence[bytes]) -> dict[str, str]:
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}


def meta_of(raw: Mapping[str, str]) -> ThreadMeta:
    return ThreadMeta(
        thread_id=raw["thread_id"],
        agent=raw["agent"],
        origin=Origin.model_validate_json(raw["origin"]),
        created=datetime.fromisoformat(raw["created"]),
        trace=raw.get(keys.META_TRACE),
    )


class ThreadReads:
    redis: aioredis.Redis

    async def request(self, request_id: str) -> RequestView:
        tid = await self.redis.hget(keys.REQUEST_THREAD, request_id)
        if tid is None:
            raise RequestNotFound(request_id)
        logs.touch(thread_id=text(tid))  # the request's access line names its thread
        views = await self._request_views([(request_id, text(tid))])
        if not views:
            raise RequestNotFound(request_id)
        return views[0]

    async def pending_requests(self, limit: int = 200) -> list[RequestView]:
        raw: Any = await self.redis.zrange(keys.PENDING, 0, limit - 1)
        ids = [text(r) for r in raw]
        if not ids:
            return []
        tids = await self.redis.hmget(keys.REQUEST_THREAD, ids)
        views = await self._request_views(
            [(rid, text(t)) for rid, t in zip(ids, tids, strict=True) if t is not None]
        )
        stale = [v.request.request_id for v in views if v.status != "pending"]
        if stale:  # the index lags a crash between an answer and its ZREM; heal it here
            await self.redis.zrem(keys.PENDING, *stale)
        return [v for v in views if v.status == "pending"]

    async def _request_views(self, pairs: list[tuple[str, str]]) -> list[RequestView]:
        pipe = self.redis.pipeline(transaction=False)
        for rid, tid in pairs:
            pipe.hmget(keys.requests(tid), [rid, f"{rid}:status"])
        views = []
        for raw, status in await pipe.execute():
            if raw is None:
                continue
            views.append(
                RequestView(
                    request=RequestRecord.model_validate_json(raw),
                    status=cast(RequestStatus, text(status or b"pending")),
                )
            )
        return views

    async def thread(self, thread_id: str) -> ThreadView:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.meta(thread_id))
        pipe.hgetall(keys.state(thread_id))
        pipe.lrange(keys.events(thread_id), 0, -1)
        pipe.lrange(keys.inbox(thread_id), 0, -1)
        pipe.hgetall(keys.requests(thread_id))
        pipe.hgetall(keys.outbox(thread_id))
        meta, state, events, inbox, requests, outbox = await pipe.execute()
        if not meta:
            raise ThreadNotFound(thread_id)
        req = {text(k): text(v) for k, v in requests.items()}
        out = {text(k): text(v) for k, v in outbox.items()}
        view = ThreadView(
            meta=meta_of({text(k): text(v) for k, v in meta.items()}),
            state=ThreadState.from_hash({text(k): text(v) for k, v in state.items()}),
            events=load_events(events),
            inbox=load_events(inbox),
            requests=[
                RequestView(
                    request=RequestRecord.model_validate_json(v),
                    status=cast(RequestStatus, req.get(f"{k}:status", "pending")),
                )
                for k, v in req.items()
                if ":" not in k
            ],
            outbox=[
                OutboxView(
                    item=OutboxItem.model_validate_json(v),
                    status=cast(DeliveryStatus, out.get(f"{k}:s", "pending")),
                    attempts=int(out.get(f"{k}:a", 0)),
                    provider_id=out.get(f"{k}:p"),
                    error=out.get(f"{k}:e"),
                )
                for k, v in out.items()
                if ":" not in k
            ],
        )
        # Hashes have no order; show requests and messages in the order they were made.
        return view.model_copy(
            update={
                "requests": sorted(view.requests, key=lambda r: r.request.created),
                "outbox": sorted(view.outbox, key=lambda o: o.item.created),
            }
        )

    async def thread_ids(self, limit: int = 100) -> list[str]:
        raw: Any = await self.redis.zrevrange(keys.THREADS, 0, limit - 1)
        return [text(t) for t in raw]

    async def summaries(self, limit: int = 100) -> list[ThreadSummary]:
        """The newest threads with their status, newest first."""
        ids = await self.thread_ids(limit)
        pipe = self.redis.pipeline(transaction=False)
        for tid in ids:
            pipe.hgetall(keys.meta(tid))
            pipe.hgetall(keys.state(tid))
        raw = await pipe.execute()
        result = []
        for meta, state in zip(raw[::2], raw[1::2], strict=True):
            if meta:
                result.append(
                    ThreadSummary(
                        meta=meta_of({text(k): text(v) for k, v in meta.items()}),
                        state=ThreadState.from_hash({text(k): text(v) for k, v in state.items()}),
                    )
                )
        return result
