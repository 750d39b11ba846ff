"""Reading threads and requests: what the API, the console and the channels look at.

Reads take no lease: they see the log as last committed, plus the inbox not yet merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis.asyncio as aioredis
from pydantic_core import from_json

from model.events import (
    RESPONSE,
    Answered,
    ApprovalRequest,
    Approved,
    Event,
    Rejected,
    load_events,
)
from model.ids import thread_of_request
from model.records import (
    DeliveryStatus,
    Origin,
    OutboxItem,
    OutboxView,
    ParentLink,
    RequestRecord,
    RequestStatus,
    RequestView,
    Status,
    ThreadMeta,
    ThreadState,
    ThreadSummary,
    ThreadView,
)
from store import indexes, keys
from store.errors import RequestNotFound, ThreadNotFound
from store.partitions import Shared
from telemetry import logs

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def flat_text(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A hash as redis-py returns it (bytes), as text."""
    return {text(k): text(v) for k, v in raw.items()}


def state_of(raw: Mapping[str, str]) -> ThreadState:
    return ThreadState(
        status=cast(Status, raw.get(keys.STATUS, "idle")),
        steps=int(raw.get(keys.STEPS, 0)),
        errors=int(raw.get(keys.ERRORS, 0)),
        lease_owner=raw.get(keys.LEASE_OWNER) or None,
        lease_token=int(raw.get(keys.LEASE_TOKEN, 0)),
        lease_until=int(raw.get(keys.LEASE_UNTIL, 0)),
    )


def request_view(
    rid: str,
    tid: str,
    record: str | bytes,
    status: str | bytes | None,
    answer: str | bytes | None,
    sent: str | bytes | None,
    approvals: str | bytes | None = None,
    *,
    log: Sequence[Event] = (),
) -> RequestView:
    """``answer``: the ``REQUEST_ANSWER`` field, which only requests answered by an
    earlier version have (stored without the request id its field names; earlier, with it).
    A later answer is read from ``log``, the thread's events and inbox, where it is anyway."""
    response = (
        RESPONSE.validate_python({"request_id": rid, **from_json(answer)})
        if answer is not None
        else answer_in(log, rid)
        if text(status or "") == "answered"
        else None
    )
    given = int(text(approvals)) if approvals is not None else 0
    if approvals is None and isinstance(response, Approved):
        given = 1  # a single approval answers at once and writes no count (scripts.ANSWER)
    settled = cast(RequestStatus, text(status) if status is not None else "pending")
    request = RequestRecord.load(
        record, request_id=rid, thread_id=tid, answered=settled == "answered"
    )
    if request.call_id is None and request.kind == "approval":
        # answered: its call id is its approval_request's (scripts.ANSWER), where ``log`` has it
        request = request.model_copy(update={"call_id": asked_call(log, rid)})
    return RequestView(
        request=request,
        status=settled,
        response=response,
        sent=text(sent) if sent is not None else None,
        approvals_given=given,
    )


def asked_call(log: Sequence[Event], rid: str) -> str | None:
    """The call id of approval ``rid`` as its ``approval_request`` in ``log`` says it."""
    for event in log:
        if isinstance(event, ApprovalRequest) and event.request_id == rid:
            return event.call_id
    return None


def answer_in(log: Sequence[Event], rid: str) -> Approved | Rejected | Answered | None:
    """The answer that settled request ``rid``: the last response to it in the log (an
    approval short of its quorum is one too, and comes before the one that completes it;
    none can follow that, as scripts.ANSWER takes nothing for a request no longer pending)."""
    for event in reversed(log):
        if isinstance(event, Approved | Rejected | Answered) and event.request_id == rid:
            return event
    return None


def request_fields(rid: str) -> list[str]:
    """The hash fields ``request_view`` reads, in its order."""
    suffixes = (keys.REQUEST_STATUS, keys.REQUEST_ANSWER, keys.REQUEST_SENT, keys.REQUEST_APPROVALS)
    return [rid, *(keys.request_field(rid, s) for s in suffixes)]


def flat_hash(flat: Sequence[bytes]) -> dict[str, str]:
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}


def stamp_of(stored: str) -> datetime:
    """A time as model.forms.stored_stamp writes it: milliseconds, or ISO 8601 (as before)."""
    if stored.isdigit():
        return _EPOCH + timedelta(milliseconds=int(stored))
    return datetime.fromisoformat(stored)


def stored_origin(origin: Origin) -> str:
    """A thread's origin as its meta keeps it: ``channel:address`` where that says all of it
    (no routing, no copies: a REST or SMS thread), else its JSON, as an earlier version kept
    every one. 26 bytes fewer in a REST thread's meta, which takes it a size class down."""
    if not origin.plain or origin.channel.startswith("{"):
        return origin.model_dump_json(exclude_defaults=True)
    return origin.target


def origin_of(stored: str) -> Origin:
    """``stored_origin`` read back: JSON (an object) or ``channel:address``."""
    if stored.startswith("{"):
        return Origin.model_validate_json(stored)
    return Origin.of(stored)


def meta_of(raw: Mapping[str, str], thread_id: str) -> ThreadMeta:
    """``thread_id``: the thread the meta key names (a meta written by an earlier version
    says it too, the same)."""
    return ThreadMeta(
        thread_id=thread_id,
        agent=raw["agent"],
        origin=origin_of(raw["origin"]),
        created=stamp_of(raw["created"]),
        trace=raw.get(keys.META_TRACE),
        parent=ParentLink.model_validate_json(raw[keys.META_PARENT])
        if keys.META_PARENT in raw
        else None,
    )


def requests_of(
    raw: Mapping[str, str], thread_id: str, log: Sequence[Event] = ()
) -> list[RequestView]:
    """A thread's requests hash as views, in the order they were made (hashes have none);
    ``log``: the thread's events and inbox, where the answers are (``request_view``)."""
    views = [
        request_view(k, thread_id, v, *(raw.get(f) for f in request_fields(k)[1:]), log=log)
        for k, v in raw.items()
        if ":" not in k
    ]
    return sorted(views, key=lambda r: r.request.created)


def outbox_of(
    raw: Mapping[str, str], thread_id: str, requests: Mapping[str, str]
) -> list[OutboxView]:
    """A thread's outbox hash as views, in the order they were made (``requests``: the
    thread's requests hash, which holds the items (keys.OUTBOX_BODY) and the requests an
    approval's first offer takes its words from; an earlier version kept the items in
    ``raw``, at their ids)."""

    def field(oid: str, suffix: str) -> str | None:
        return raw.get(keys.outbox_field(oid, suffix))

    def attempts(oid: str, status: str) -> int:
        # A settled item keeps no count of one (scripts.OUTBOX_SETTLE): it was tried once;
        # so was one a commit claimed, 'sending' without a count (store.threads).
        count = field(oid, keys.OUTBOX_ATTEMPTS)
        return int(count) if count is not None else int(status != "pending")

    prefix = keys.OUTBOX_BODY
    bodies = {k: v for k, v in raw.items() if ":" not in k}
    bodies.update(
        (k[len(prefix) :], v)
        for k, v in requests.items()
        if k.startswith(prefix) and ":" not in k[len(prefix) :]
    )

    def provider_id(oid: str, status: str) -> str | None:
        # A sent item keeps no provider id that is its own id (scripts.OUTBOX_SETTLE).
        found = field(oid, keys.OUTBOX_PROVIDER_ID)
        return oid if found is None and status == "sent" else found

    def status(oid: str) -> str:
        # 'sending:<deadline>': a commit's own claim (keys.sending_until)
        return (field(oid, keys.OUTBOX_STATUS) or "pending").partition(":")[0]

    views = [
        OutboxView(
            item=OutboxItem.load(v, outbox_id=k, thread_id=thread_id, requests=requests),
            status=cast(DeliveryStatus, status(k)),
            attempts=attempts(k, status(k)),
            provider_id=provider_id(k, status(k)),
            error=field(k, keys.OUTBOX_ERROR),
            reported=[s for s in (field(k, keys.OUTBOX_PROVIDER_STATUS) or "").split(",") if s],
        )
        for k, v in bodies.items()
    ]
    return sorted(views, key=lambda o: o.item.created)


class ThreadReads:
    redis: aioredis.Redis
    shared: Shared

    async def thread_of(self, request_id: str) -> str:
        """The thread of a request: named by its id (model.ids.request_id_for), or, for ids
        of earlier versions, looked up in the request -> thread index. Raises
        RequestNotFound."""
        tid = thread_of_request(request_id)
        if tid is not None:
            return tid
        raw = await self.redis.hget(self.shared.request_thread(request_id), request_id)
        if raw is None:
            raise RequestNotFound(request_id)
        return text(raw)

    async def request(self, request_id: str) -> RequestView:
        tid = await self.thread_of(request_id)
        logs.touch(thread_id=tid)  # the request's access line names its thread
        views = await self.request_views([(request_id, tid)], answers=True)
        if not views:
            raise RequestNotFound(request_id)
        return views[0]

    async def pending_requests(self, limit: int = 200) -> list[RequestView]:
        pairs = await indexes.pending_pairs(self.redis, self.shared, limit)
        if not pairs:
            return []
        views = await self.request_views(pairs)
        stale = [v.request.request_id for v in views if v.status != "pending"]
        if stale:  # the index lags a crash between an answer and its ZREM; heal it here
            await indexes.drop_pending(self.redis, self.shared, stale)
        return [v for v in views if v.status == "pending"]

    async def request_views(
        self, pairs: list[tuple[str, str]], answers: bool = False
    ) -> list[RequestView]:
        """Views of requests; ``answers``: with the answer of one answered (read from its
        thread's log, a second round trip then, unless an earlier version kept it beside
        the request). Without, an answered request's view has none."""
        pipe = self.redis.pipeline(transaction=False)
        for rid, tid in pairs:
            pipe.hmget(keys.requests(tid), request_fields(rid))
        found = [
            (rid, tid, reply)
            for (rid, tid), reply in zip(pairs, await pipe.execute(), strict=True)
            if reply[0] is not None
        ]
        # request_fields: record, status, answer, ...
        wanted = {
            tid
            for _, tid, (_, status, answer, *_) in found
            if answers and status is not None and text(status) == "answered" and answer is None
        }
        logs_of: dict[str, list[Event]] = {}
        if wanted:
            pipe = self.redis.pipeline(transaction=False)
            for tid in wanted:
                pipe.lrange(keys.events(tid), 0, -1)
                pipe.lrange(keys.inbox(tid), 0, -1)
            replies = await pipe.execute()
            for tid, events, inbox in zip(wanted, replies[::2], replies[1::2], strict=True):
                logs_of[tid] = [*load_events(events), *load_events(inbox)]
        return [
            request_view(rid, tid, raw, *fields, log=logs_of.get(tid, ()))
            for rid, tid, (raw, *fields) in found
        ]

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
        asked = flat_text(requests)
        events, inbox = load_events(events), load_events(inbox)
        return ThreadView(
            meta=meta_of(flat_text(meta), thread_id),
            state=state_of(flat_text(state)),
            events=events,
            inbox=inbox,
            requests=requests_of(asked, thread_id, [*events, *inbox]),
            outbox=outbox_of(flat_text(outbox), thread_id, asked),
        )

    async def thread_ids(self, limit: int = 100) -> list[str]:
        return await indexes.newest_threads(self.redis, self.shared, limit)

    async def summaries(self, limit: int = 100) -> list[ThreadSummary]:
        """The newest threads with their status, newest first."""
        ids = await self.thread_ids(limit)
        pipe = self.redis.pipeline(transaction=False)
        for tid in ids:
            pipe.hgetall(keys.meta(tid))
            pipe.hgetall(keys.state(tid))
        raw = await pipe.execute()
        result = []
        for tid, meta, state in zip(ids, raw[::2], raw[1::2], strict=True):
            if meta:
                result.append(
                    ThreadSummary(
                        meta=meta_of(flat_text(meta), tid),
                        state=state_of(flat_text(state)),
                    )
                )
        return result
