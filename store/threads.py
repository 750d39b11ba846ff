"""Threads in Redis: inbound appends, answers, leases and fenced commits (reads: store.reads).

Humans' input (messages, answers) goes to a thread's inbox, deduplicated by the provider's
message id. Only the worker holding the thread's lease writes the event log: it merges the
inbox into the log as it goes, and every one of its writes carries the lease's fencing token,
checked inside the same script that writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from model.events import Approved, Event, HumanResponse, SystemNote, dump_event, load_events
from model.forms import stored_stamp
from model.ids import thread_of_request
from model.records import (
    Origin,
    OutboxItem,
    ParentLink,
    RequestRecord,
    ThreadMeta,
    ThreadState,
)
from store import edits, keys, reporting, scripts
from store.changes import announcer
from store.errors import (
    AlreadyCounted,
    ArgumentsChanged,
    GrantNotOffered,
    LeaseLost,
    NotAllowed,
    QuestionAsked,
    QuorumIncomplete,
    RequestAlreadyAnswered,
    RequestExpired,
    RequestNotFound,
    RequestWithdrawn,
    ThreadNotFound,
)
from store.holding import Held, MetaCache, ServerClock
from store.outbox import Handoff, recovery_member
from store.partitions import Shared
from store.publication import Ops, runs_inline
from store.reads import ThreadReads, flat_hash, meta_of, state_of, stored_origin, text
from store.snapshot import Stored
from store.streams import Entry, WorkStream
from telemetry import logs


@dataclass(frozen=True)
class NewThread:
    """What a thread needs when an inbound message creates it."""

    agent: str
    origin: Origin
    parent: ParentLink | None = None
    """Set when another agent's handoff starts the thread (store.calls, agent.handoff)."""


FEED_DELAY_S = 1.0
"""How long a mid-run commit's change may wait before the change feed hears of it
(store.changes): a run that pauses within it is announced once, by its releasing commit,
instead of once per step; a longer one at most once per this interval."""


@dataclass(frozen=True)
class Lease:
    """A worker's hold on one thread, with everything it loaded on acquiring it."""

    thread_id: str
    token: int
    owner: str
    meta: ThreadMeta
    state: ThreadState
    events: list[Event]
    ledger: dict[str, str]
    unpublished: dict[str, Any] | None
    """Index and outbox pointers a previous run stored but may not have published."""
    base: int = 0
    """Where ``events`` start in the log: the position the thread's snapshot covers."""
    snapshot: bytes | None = None
    """The snapshot's body (store.snapshot), when ``base`` > 0."""
    held: Held = field(default_factory=lambda: Held({}, 0.0), compare=False)
    """The holder's record of its writes (changes as it commits)."""


@dataclass(frozen=True)
class CommitResult:
    released: bool
    merged: list[Event] = field(default_factory=list)
    """Inbox events merged into the log by this commit (they arrived while running)."""


def _in_ledger(state_field: str) -> bool:
    return state_field.startswith(keys.LEDGER)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _raise_refusal(request_id: str, code: int, detail: str, response: HumanResponse) -> None:
    """The answer script's refusals (scripts.ANSWER) as the store's errors."""
    if code == 0:
        if detail == "expired":
            raise RequestExpired(request_id)
        if detail == "withdrawn":
            raise RequestWithdrawn(request_id)
        raise RequestAlreadyAnswered(request_id)
    if code == 2:
        raise AlreadyCounted(request_id)
    if code == 4:
        raise QuorumIncomplete(request_id, int(detail))
    if code == 5:
        raise NotAllowed(request_id, detail)
    if code == 6:
        given = response.arguments_hash if isinstance(response, Approved) else None
        raise ArgumentsChanged(request_id, detail, given or "")
    if code == 7:
        raise GrantNotOffered(request_id, detail)


class ThreadStore(ThreadReads):
    """Writes to threads, and (from ThreadReads) the reads."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.shared = Shared(client)
        self.runs = WorkStream(client, keys.runs, keys.RUNS_GROUP)
        self.outbox_stream = WorkStream(client, keys.outbox_stream, keys.OUTBOX_GROUP)
        self._inbound = client.register_script(scripts.INBOUND)
        self._inbound_unasked = client.register_script(scripts.INBOUND_UNASKED)
        self._answer = client.register_script(scripts.ANSWER)
        self._acquire = client.register_script(scripts.ACQUIRE)
        self._commit = client.register_script(scripts.COMMIT)
        self._extend = client.register_script(scripts.EXTEND)
        self._expire = client.register_script(scripts.EXPIRE)
        self._withdraw = client.register_script(scripts.WITHDRAW)
        self._inline = runs_inline(client, self.shared)
        self.direct: Handoff | None = None
        """This process's running dispatcher, if the worker handed it its commits' new
        outbox items (agent.worker): they are then claimed for it (store.outbox)."""
        self.metas = MetaCache()
        self.clock = ServerClock()
        self.feed_delay = FEED_DELAY_S
        self.announcer = announcer(client)
        self.next_due_ms = float("inf")
        """The earliest deadline or timer this process published since the worker last
        looked (epoch ms): its cue to look before its next scheduled round (agent.worker)."""

    async def setup(self) -> None:
        await self.runs.ensure_group()
        await self.outbox_stream.ensure_group()
        # All of them: redis-py's first call of a script it has not loaded costs a
        # NOSCRIPT error and a SCRIPT LOAD round trip.
        for script in (
            self._inbound,
            self._inbound_unasked,
            self._answer,
            self._acquire,
            self._commit,
        ):
            await self.redis.script_load(script.script)

    # ---- input from humans ------------------------------------------------------------
    async def append_inbound(
        self,
        thread_id: str,
        event: Event,
        *,
        dedupe: str | None = None,
        create: NewThread | None = None,
        before: scripts.Then | None = None,
        unasked: bool = False,
    ) -> bool:
        """Store a human's message once and wake the thread. False: a duplicate.

        Raises ThreadNotFound when the thread does not exist and ``create`` is not given.
        One round trip on a single server: the script wakes the thread itself. ``before``
        adds commands that must be done when the wake-up is seen (scripts.run_then).
        ``unasked``: only if the thread never asked a question nor started a call, else
        QuestionAsked and nothing stored (``before``'s commands are done all the same).
        """
        report = await reporting.inbound(self.redis, thread_id, event, create)
        parent = create.parent.model_dump_json() if create and create.parent else ""
        args: list[Any] = [dedupe or "", dump_event(event), "1" if create else "0", thread_id]
        if create:
            args += [
                create.agent,
                stored_origin(create.origin),
                str(stored_stamp(event.at)),  # milliseconds, as the event's (store.reads)
            ]
        else:
            args += ["", "", ""]
        args += [report.traceparent or "", parent, _ms(event.at)]
        thread_keys = [keys.inbox(thread_id), keys.seen(thread_id), keys.meta(thread_id)]
        if self._inline:
            thread_keys += [self.shared.runs(thread_id), self.shared.threads(thread_id)]
        # On a cluster the wake-up is on another slot: it follows the script, and only once
        # the thread is known to exist (a wake-up first could find no thread, or an empty
        # inbox, and be acknowledged away). A duplicate still wakes the thread: if the first
        # delivery's wake-up was lost to a crash between the two, the provider's retry
        # repairs it. Extra wake-ups are cheap: a run with nothing to do ends at once.
        script = self._inbound
        if unasked:
            script = self._inbound_unasked
            thread_keys = [keys.state(thread_id), keys.calls(thread_id), *thread_keys]
        stored, *_ = await scripts.run_then(self.redis, script, thread_keys, args, before=before)
        if stored == -2:
            report.done(stored)
            raise QuestionAsked(thread_id)
        if stored != -1 and not self._inline:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xadd(self.shared.runs(thread_id), {"t": thread_id})
            if create:
                pipe.zadd(self.shared.threads(thread_id), {thread_id: _ms(event.at)}, nx=True)
            await pipe.execute()
        report.done(stored)
        if stored == -1:
            raise ThreadNotFound(thread_id)
        if stored >= 1:
            self.announcer.now(thread_id)
        return bool(stored >= 1)

    async def answer(
        self,
        request_id: str,
        response: HumanResponse,
        *,
        check: bool = True,
        dedupe: str | None = None,
    ) -> RequestRecord:
        """Bind one answer to a pending request, once, from an allowed responder.

        ``dedupe`` is the provider's id of the message that answers: a copy of a message
        already stored (as an answer or a message) raises RequestAlreadyAnswered.

        One round trip on a single server for a request id that names its thread: the
        script reads the record and applies the rules (scripts.ANSWER). An edit is checked
        here against the record read first (store.edits), then stored the same way.
        """
        tid = await self.thread_of(request_id)
        logs.touch(thread_id=tid)  # the answer's access line names its thread
        if isinstance(response, Approved) and response.arguments is not None:
            args = await self._prepared(request_id, tid, response, check, dedupe)
        else:
            args = [request_id, dump_event(self._bare(response)), dedupe or "", "rules"]
            args += ["1" if check else "0", response.channel, response.responder]
            if isinstance(response, Approved):
                args += ["1", response.arguments_hash or "", response.grant or ""]
            else:
                args += ["0", "", ""]
        answer_keys = [keys.requests(tid), keys.inbox(tid), keys.seen(tid)]
        if self._inline:
            answer_keys += [
                self.shared.runs(tid),
                self.shared.pending(request_id),
                self.shared.deadlines(request_id),
            ]
        (code, raw, detail), *_ = await scripts.run_then(
            self.redis, self._answer, answer_keys, args
        )
        if not self._inline and code in (0, 1, 3):
            # On a cluster the indexes and the wake-up are on other slots; they follow, and
            # repeat harmlessly for an answer already stored (they heal a crash before them).
            pipe = self.redis.pipeline(transaction=False)
            if code != 3:
                pipe.zrem(self.shared.pending(request_id), request_id)
                pipe.zrem(self.shared.deadlines(request_id), request_id)
            pipe.xadd(self.shared.runs(tid), {"t": tid})
            await pipe.execute()
        if code == -1:
            raise RequestNotFound(request_id)
        if code in (1, 3):  # stored: an answer, or an approval short of its quorum
            self.announcer.now(tid)
        detail = text(detail)
        # The record as it was before this answer; code 0: as answered (its status in detail)
        answered = code == 0 and detail == "answered"
        record = RequestRecord.load(raw, request_id=request_id, thread_id=tid, answered=answered)
        _raise_refusal(request_id, int(code), detail, response)
        await reporting.decided(self.redis, record, response)
        return record

    @staticmethod
    def _bare(response: HumanResponse) -> HumanResponse:
        """The response as the rules script takes it: it stamps the call's hash and the
        approver as a person itself."""
        if isinstance(response, Approved):
            return response.model_copy(update={"arguments_hash": None, "person": None})
        return response

    async def _prepared(
        self, request_id: str, tid: str, response: Approved, check: bool, dedupe: str | None
    ) -> list[Any]:
        """An edit's arguments for the answer script: checked against the record read first
        (its status is checked again by the script, which writes)."""
        views = await self.request_views([(request_id, tid)])
        if not views:
            raise RequestNotFound(request_id)
        view = views[0]
        record = view.request
        if view.status == "expired":
            raise RequestExpired(request_id)
        if view.status == "withdrawn":
            raise RequestWithdrawn(request_id)
        if view.status != "pending":
            raise RequestAlreadyAnswered(request_id)
        if check and not record.may_answer(response.channel, response.responder):
            raise NotAllowed(request_id, f"{response.channel}:{response.responder}")
        expected = record.arguments_hash
        if expected:
            # The approval binds to the exact arguments pending: stamped here when the channel
            # showed the pending call; refused when it names other ones.
            if response.arguments_hash not in (None, expected):
                raise ArgumentsChanged(request_id, expected, response.arguments_hash or "")
            response = response.model_copy(update={"arguments_hash": expected})
        response = edits.checked(record, response)
        person = record.person(response.channel, response.responder)
        response = response.model_copy(update={"person": person})
        completes = "1" if edits.special(response) else "0"
        needed = record.approvals_needed
        args: list[Any] = [request_id, dump_event(response), dedupe or "", "set"]
        return [*args, person, needed, completes]

    # ---- the lease holder's side ----------------------------------------------------------
    async def acquire(self, thread_id: str, owner: str, ttl_ms: int) -> Lease | None:
        """Take the thread's lease (None if another worker holds it) and load the thread."""
        cached = self.metas.get(thread_id)
        known = cached[0] if cached is not None else None
        now_ms = self.clock.now_ms()
        sent = time.monotonic()
        reply = await scripts.call(
            self.redis,
            self._acquire,
            [
                keys.state(thread_id),
                keys.inbox(thread_id),
                keys.events(thread_id),
                keys.ledger(thread_id),
                keys.meta(thread_id),
                keys.snapshot(thread_id),
            ],
            args=[
                owner,
                ttl_ms,
                "0" if known is None else "1" if keys.LAYOUT in known else "2",
                "" if now_ms is None else now_ms,
            ],
        )
        if reply[0] == -1:
            raise ThreadNotFound(thread_id)
        if reply[0] == 0:
            return None
        received = time.monotonic()
        if now_ms is None:  # the server's TIME: the estimate of later acquires
            self.clock.sample(int(reply[-1]), received)
        token, state_flat, events, ledger_flat, meta_flat, base, body, server_ms = reply
        state = flat_hash(state_flat)
        if cached is not None:
            meta, parsed = cached  # parsed when first read, not again on every acquire
        else:
            meta = flat_hash(meta_flat)
            parsed = meta_of(meta, thread_id)
        self.metas.put(thread_id, meta, parsed)
        ledger = flat_hash(ledger_flat)  # a thread from before keys.LAYOUT; else in the state
        ledger.update((f[len(keys.LEDGER) :], v) for f, v in state.items() if _in_ledger(f))
        unpublished = state.get(keys.UNPUBLISHED)
        return Lease(
            thread_id=thread_id,
            token=int(token),
            owner=owner,
            meta=parsed,
            state=state_of(state),
            events=load_events(events),
            ledger=ledger,
            unpublished=json.loads(unpublished) if unpublished else None,
            base=int(base),
            snapshot=body if body else None,
            held=Held(state, sent, keys.LAYOUT in meta, int(server_ms), received),
        )

    async def extend(self, lease: Lease, ttl_ms: int) -> bool:
        sent = time.monotonic()
        extended = bool(
            await self._extend(keys=[keys.state(lease.thread_id)], args=[lease.token, ttl_ms])
        )
        if extended:
            lease.held.renewed = sent
        return extended

    async def commit(
        self,
        lease: Lease,
        *,
        ttl_ms: int,
        events: Sequence[Event] = (),
        state: Mapping[str, str | int] | None = None,
        ledger: Mapping[str, str] | None = None,
        requests: Sequence[RequestRecord] = (),
        outbox: Sequence[OutboxItem] = (),
        timers: Mapping[str, int] | None = None,
        release: bool = False,
        merge: bool = True,
        ack: tuple[WorkStream, Entry] | None = None,
        snapshot: Stored | None = None,
    ) -> CommitResult:
        """Write under the lease, atomically: events, state, ledger, requests, outbox items,
        and the thread's new snapshot (store.snapshot) if given.

        ``timers`` (timer id -> due, epoch ms) are published with the new requests and items.

        ``merge`` also moves the inbox into the log (the result says what arrived).
        ``release`` gives the lease up, unless something arrived: then the caller keeps it
        and must go on. Raises LeaseLost if another worker has taken the thread over.

        A commit that keeps the lease writes only the state fields that changed and renews
        the lease only when half of it has passed (``Held``); a releasing one writes all.
        """
        tid = lease.thread_id
        held = lease.held
        state = dict(state or {}) if release else held.changed(state or {})
        for name, value in keys.UNWRITTEN.items():
            if name not in held.state and str(state.get(name)) == value:
                del state[name]
        renew = not release and held.renew_due(ttl_ms)
        sent = time.monotonic()
        questions = [r.request_id for r in requests if r.kind == "question"]
        if questions:  # the thread's open question, for channels that take a reply as answer
            state[keys.QUESTION] = questions[-1]
        shown = bool(events or state or requests or outbox)  # what the change feed is for
        if ledger and held.layout:  # in the state hash (keys.LAYOUT)
            state.update((keys.LEDGER + call_id, v) for call_id, v in ledger.items())
            ledger = None
        publication: dict[str, Any] | None = None
        ops = Ops()
        direct = self.direct if outbox and self.direct and self.direct.accepting() else None
        now_ms = held.now_ms()
        claimed_until = now_ms + direct.claim_ms if direct else 0
        if requests or outbox or timers:
            dues = [_ms(r.deadline) for r in requests if r.deadline] + list((timers or {}).values())
            self.next_due_ms = min([self.next_due_ms, *dues])
            publication = {
                "timers": [[keys.timer_member(tid, t), due] for t, due in (timers or {}).items()],
                "requests": [
                    [r.request_id, _ms(r.created), _ms(r.deadline) if r.deadline else 0]
                    for r in requests
                ],
                "outbox": [] if direct else [o.outbox_id for o in outbox],
            }
            if direct:  # each item's recovery entry, due when its claim runs out
                publication["recover"] = [
                    [recovery_member(tid, o.outbox_id), claimed_until] for o in outbox
                ]
            if not self._inline:  # always new: its publication removes it (publish_into)
                state[keys.UNPUBLISHED] = json.dumps(publication)
            else:  # a single server: the script writes the shared keys (store.publication)
                ops.publication(self.shared, tid, publication)
                publication = None
        if self._inline and ack is not None:
            ops.ack(ack)
            ack = None
        args: list[Any] = [lease.token, ttl_ms, int(release), int(merge), int(renew)]
        args.append(now_ms)
        args += [len(events), *(dump_event(e) for e in events)]
        flat_state = [x for kv in state.items() for x in kv]
        args += [len(flat_state), *flat_state]
        flat_ledger = [x for kv in (ledger or {}).items() for x in kv]
        args += [len(flat_ledger), *flat_ledger]
        flat_req: list[Any] = []
        for r in requests:
            status_field = keys.request_field(r.request_id, keys.REQUEST_STATUS)
            flat_req += [r.request_id, r.stored(), status_field, "pending"]
        flat_out: list[Any] = []
        asked = {r.request_id: r for r in requests}  # an item stored beside its request
        for o in outbox:
            status_field = keys.outbox_field(o.outbox_id, keys.OUTBOX_STATUS)
            stored = o.stored(asked.get(o.request_id) if o.request_id else None)
            flat_req += [keys.outbox_body(o.outbox_id), stored]  # the long value (keys.outbox)
            if direct:  # claimed for this process's dispatcher: its first attempt (no count
                # written: keys.OUTBOX_ATTEMPTS), until (keys.OUTBOX_CLAIM_UNTIL)
                flat_out += [status_field, keys.sending_until(claimed_until)]
            else:
                flat_out += [status_field, "pending"]
        args += [len(flat_req), *flat_req, len(flat_out), *flat_out]
        args += [2, snapshot.upto, snapshot.body] if snapshot else [0]
        args += ops.argv()
        reply = await scripts.call(
            self.redis,
            self._commit,
            [
                keys.state(tid),
                keys.events(tid),
                keys.inbox(tid),
                keys.ledger(tid),
                keys.requests(tid),
                keys.outbox(tid),
                keys.snapshot(tid),
                *ops.keys,
            ],
            args=args,
        )
        if reply[0] == -1:
            raise LeaseLost(tid, lease.token)
        result = CommitResult(released=bool(reply[1]), merged=load_events(reply[2]))
        held.wrote(state)
        if release or result.merged:
            self.announcer.now(tid)
        elif shown:
            self.announcer.later(tid, self.feed_delay)
        if renew or (release and not result.released):  # the script renewed the lease
            held.renewed = sent
        if publication is not None or ack is not None:
            pipe = self.redis.pipeline(transaction=False)
            if publication is not None:
                self.publish_into(pipe, tid, publication)
            if ack is not None and result.released:
                ack[0].ack_into(pipe, ack[1])
            await pipe.execute()
        if direct:  # stored, claimed and (above) recoverable: now send them
            direct.take(outbox)
        return result

    def publish_into(
        self, pipe: aioredis.client.Pipeline, thread_id: str, publication: Mapping[str, Any]
    ) -> None:
        """Index new requests and hand new outbox items to the senders (idempotent)."""
        for rid, created_ms, deadline_ms in publication.get("requests", []):
            pipe.zadd(self.shared.pending(rid), {rid: created_ms})
            if thread_of_request(rid) is None:  # an id that does not name its thread
                pipe.hset(self.shared.request_thread(rid), rid, thread_id)
            if deadline_ms:
                pipe.zadd(self.shared.deadlines(rid), {rid: deadline_ms})
        for member, due_ms in publication.get("timers", []):
            pipe.zadd(keys.TIMERS, {member: due_ms})
        for oid in publication.get("outbox", []):
            pipe.xadd(self.shared.outbox(thread_id), {"t": thread_id, "o": oid})
        for member, due_ms in publication.get("recover", []):
            # Due when the claim runs out (the server's time as the holder knows it; written
            # by an earlier version: this host's). Early, the recovery finds it live and waits.
            pipe.zadd(self.shared.outbox_retry(thread_id), {member: due_ms}, nx=True)
        pipe.hdel(keys.state(thread_id), keys.UNPUBLISHED)

    async def withdraw(self, lease: Lease, request_id: str) -> bool:
        """Withdraw a pending request under the lease. False: answered or expired first."""
        tid = lease.thread_id

        def then(pipe: aioredis.client.Pipeline) -> None:
            pipe.zrem(self.shared.pending(request_id), request_id)  # harmless if refused
            pipe.zrem(self.shared.deadlines(request_id), request_id)

        result, *_ = await scripts.run_then(
            self.redis,
            self._withdraw,
            [keys.state(tid), keys.requests(tid)],
            [lease.token, request_id],
            None,
        )
        if result == -1:
            raise LeaseLost(tid, lease.token)
        if result == 1:
            pipe = self.redis.pipeline(transaction=False)
            then(pipe)
            await pipe.execute()
        return bool(result == 1)

    async def expire_due(self, limit: int = 100) -> int:
        """Expire pending requests whose deadline has passed; each thread hears of it."""
        now_ms = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        for key in self.shared.every(keys.deadlines):
            pipe.zrangebyscore(key, "-inf", now_ms, 0, limit)
        due: list[Any] = [raw for part in await pipe.execute() for raw in part]
        expired = 0
        for raw in due:
            rid = text(raw)
            try:
                tid = await self.thread_of(rid)
            except RequestNotFound:  # the request's thread is gone: drop the deadline
                await self.redis.zrem(self.shared.deadlines(rid), rid)
                continue
            note = SystemNote(
                kind="timeout", request_id=rid, text=f"request {rid} expired without an answer"
            )

            def then(pipe: aioredis.client.Pipeline, rid: str = rid, tid: str = tid) -> None:
                pipe.zrem(self.shared.pending(rid), rid)
                pipe.zrem(self.shared.deadlines(rid), rid)
                pipe.xadd(self.shared.runs(tid), {"t": tid})

            result, *_ = await scripts.run_then(
                self.redis,
                self._expire,
                [keys.requests(tid), keys.inbox(tid)],
                [rid, dump_event(note)],
                then,
            )
            expired += int(result == 1)
        return expired

    async def publish(self, thread_id: str, publication: Mapping[str, Any]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        self.publish_into(pipe, thread_id, publication)
        await pipe.execute()
