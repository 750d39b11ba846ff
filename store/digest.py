"""Reading digests of threads and requests (model.views) for the console and its stream.

A digest needs a thread's metadata, state, requests, outbox and the tail of its log, never
the whole log: a thread of 10,000 events costs what a thread of 20 does. Each thread is read
in one MULTI, so its length and its tail agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis

from model.events import Event, UserMessage, load_events
from model.records import (
    OutboxView,
    RequestView,
    ThreadMeta,
    ThreadState,
)
from model.views import Offer, RequestDigest, Said, ThreadChange, ThreadDigest
from store import indexes, keys
from store.partitions import Shared
from store.reads import meta_of, outbox_of, requests_of, state_of, text

TAIL = 20
"""Events read from the end of a log: enough to find the message that led to a request."""
MAX_DELTA = 500
"""More new events than this since the last read, and only the tail is sent: a receiver
that misses the rest reads the thread itself, once."""


@dataclass(frozen=True)
class _Raw:
    meta: ThreadMeta
    state: ThreadState
    length: int
    first: list[Event]
    tail: list[Event]
    delta_from: int | None
    """Where ``delta`` starts in the log; None: too far behind, or not asked."""
    delta: list[Event]
    inbox: list[Event]
    requests: list[RequestView]
    outbox: list[OutboxView]


def _said(event: Event) -> Said | None:
    if isinstance(event, UserMessage):
        return Said(by=event.sender, channel=event.channel, text=event.text, at=event.at)
    return None


def _request_digest(raw: _Raw, view: RequestView) -> RequestDigest:
    record = view.request
    asked = None
    for event in reversed([*raw.first, *raw.tail, *raw.inbox]):
        if event.at <= record.created and (said := _said(event)) is not None:
            asked = said
            break
    return RequestDigest(
        request=record,
        status=view.status,
        agent=raw.meta.agent,
        origin=raw.meta.origin,
        asked=asked,
        offers=[
            Offer(channel=o.item.to.channel, address=o.item.to.address, status=o.status)
            for o in raw.outbox
            if o.item.request_id == record.request_id
        ],
    )


def _thread_digest(raw: _Raw) -> ThreadDigest:
    opening = [*raw.first, *raw.inbox][:1]
    last = raw.outbox[-1].item if raw.outbox else None
    times = [raw.meta.created, *(e.at for e in [*raw.tail[-1:], *raw.inbox[-1:]])]
    return ThreadDigest(
        meta=raw.meta,
        state=raw.state,
        first=_said(opening[0]) if opening else None,
        last_word=last.text if last else None,
        last_word_kind=last.kind if last else None,
        last_activity=max(times),
        events=raw.length,
        pending=sum(r.status == "pending" for r in raw.requests),
    )


class Digests:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.shared = Shared(client)

    async def _read(self, since: Mapping[str, int | None], tail: int = TAIL) -> dict[str, _Raw]:
        """Read each thread and ``tail`` events; ``since[tid]`` also reads from that index on.

        Two round trips for any number of threads: everything but the log, then the log's
        tail by absolute index. The log only grows, so the indices stay true.
        """
        pipe = self.redis.pipeline(transaction=False)
        for tid in since:
            pipe.hgetall(keys.meta(tid))
            pipe.hgetall(keys.state(tid))
            pipe.llen(keys.events(tid))
            pipe.lrange(keys.events(tid), 0, 0)
            pipe.lrange(keys.inbox(tid), 0, -1)
            pipe.hgetall(keys.requests(tid))
            pipe.hgetall(keys.outbox(tid))
        replies = await pipe.execute()
        found = {
            tid: replies[at : at + 7]
            for tid, at in zip(since, range(0, len(replies), 7), strict=True)
            if replies[at]
        }
        starts: dict[str, int] = {}
        wanted: dict[str, int | None] = {}
        pipe = self.redis.pipeline(transaction=False)
        for tid, reply in found.items():
            length = int(reply[2])
            start = since[tid]
            if start is not None and not 0 <= length - start <= MAX_DELTA:
                start = None
            wanted[tid] = start
            starts[tid] = min(max(0, length - tail), length if start is None else start)
            pipe.lrange(keys.events(tid), starts[tid], length - 1)
        logs = await pipe.execute() if found else []
        results: dict[str, _Raw] = {}
        for (tid, reply), log in zip(found.items(), logs, strict=True):
            meta, state, length, first, inbox, requests, outbox = reply
            events = load_events(log)
            asked = _strings(requests)
            start = wanted[tid]
            results[tid] = _Raw(
                meta=meta_of(_strings(meta), tid),
                state=state_of(_strings(state)),
                length=int(length),
                first=load_events(first),
                tail=events[-tail:],
                delta_from=start,
                delta=events[start - starts[tid] :] if start is not None else [],
                inbox=load_events(inbox),
                requests=requests_of(asked, tid),
                outbox=outbox_of(_strings(outbox), tid, asked),
            )
        return results

    async def changes(self, since: Mapping[str, int | None]) -> list[ThreadChange]:
        """What each thread looks like now; its log from ``since[tid]`` (None: the tail)."""
        changes = []
        for raw in (await self._read(since)).values():
            start, delta = raw.delta_from, raw.delta
            if start is None:
                start, delta = raw.length - len(raw.tail), raw.tail
            changes.append(
                ThreadChange(
                    thread=_thread_digest(raw),
                    requests=[_request_digest(raw, r) for r in raw.requests],
                    events_from=start,
                    events=delta,
                    inbox=raw.inbox,
                    outbox=raw.outbox,
                )
            )
        return changes

    async def threads(self, limit: int = 100) -> list[ThreadDigest]:
        """The newest threads first."""
        ids = await indexes.newest_threads(self.redis, self.shared, limit)
        # A line of the list needs only the last event (its time), not a tail to search.
        raws = await self._read(dict.fromkeys(ids), tail=1)
        return [_thread_digest(raw) for raw in raws.values()]

    async def pending(self, limit: int = 200) -> list[RequestDigest]:
        """Requests waiting for a human, oldest first."""
        pairs = await indexes.pending_pairs(self.redis, self.shared, limit)
        if not pairs:
            return []
        ids = [rid for rid, _ in pairs]
        raws = await self._read(dict.fromkeys(tid for _, tid in pairs))
        found = {
            view.request.request_id: _request_digest(raw, view)
            for raw in raws.values()
            for view in raw.requests
            if view.status == "pending"
        }
        return [found[rid] for rid in ids if rid in found]


def _strings(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}
