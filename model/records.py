"""Records that cross the store's boundary: thread metadata and state, requests, outbox items."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import from_json, to_json

from model.events import (
    Event,
    JsonObject,
    MessageKind,
    TaggedResponse,
    arguments_hash,
    stamp,
)
from model.forms import stored_serializer

Status = Literal["idle", "running", "awaiting_human", "waiting", "done", "failed", "cancelled"]
"""``waiting``: for a long-running tool's result or a child agent's answer, not for a human."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Origin(_Frozen):
    """Where a thread came from, and what its channel needs to answer in the same place.

    ``route`` is the channel's own routing (Slack channel + thread_ts, email Message-IDs,
    a phone number pair); the core stores it and hands it back, never reads it.
    """

    channel: str
    address: str
    route: dict[str, str] = Field(default_factory=dict)
    copies: list[str] = Field(default_factory=list)
    """Further ``channel:address`` places that get all the origin gets: a thread no human
    started (a trigger's or a schedule's) reports to every address of its ``report_to``."""

    @classmethod
    def report_to(cls, targets: list[str]) -> Origin:
        """The origin of a thread started by no human: the first of ``targets``, the rest
        as copies."""
        first = cls.of(targets[0])
        return first.model_copy(update={"copies": list(targets[1:])})

    def places(self) -> list[Origin]:
        """Where a message to the thread's origin goes: the origin, then each copy."""
        return [self, *(Origin.of(t) for t in self.copies)]

    @property
    def target(self) -> str:
        """``channel:address``, the form approvers, notify lists and delivery events use."""
        return f"{self.channel}:{self.address}"

    @property
    def plain(self) -> bool:
        """Whether ``target`` says all of it (no routing, no copies): stored so, then."""
        return not self.route and not self.copies and ":" not in self.channel

    @classmethod
    def of(cls, target: str) -> Origin:
        """The ``channel:address`` form back as an origin (with no routing of its own)."""
        channel, _, address = target.partition(":")
        return cls(channel=channel, address=address)


class ParentLink(_Frozen):
    """The thread (and its tool call) that handed this one its work."""

    thread_id: str
    call_id: str
    depth: int = 1
    """Handoffs from the root thread to this one (a root thread has no link: depth 0)."""


class ThreadMeta(_Frozen):
    thread_id: str
    agent: str
    origin: Origin
    created: datetime
    trace: str | None = None
    """The W3C traceparent of the thread's root span (set when created with tracing on)."""
    parent: ParentLink | None = None
    """Set on a child thread started by a handoff; its children are the parent's
    ``tool_started`` events that name an agent."""


class ThreadState(_Frozen):
    """Execution state, kept apart from the events."""

    status: Status = "idle"
    steps: int = 0
    errors: int = 0
    """Consecutive errors; three in a row and the thread asks a human."""
    lease_owner: str | None = None
    lease_token: int = 0
    lease_until: int = 0
    """Lease deadline, in Redis server time (ms)."""


RequestStatus = Literal["pending", "answered", "expired", "withdrawn"]


def call_text(tool: str, arguments: Mapping[str, Any]) -> str:
    """``deploy(tag='v1.2.3', env='production')``: how a call reads to a human."""
    args = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return f"{tool}({args})"


def approval_text(shown: str) -> str:
    """What an approval of the call ``shown`` (``call_text``) asks when its tool adds no note
    (agent.contact). A record whose text is this is stored without it and read back with it
    (``RequestRecord.stored``): changing the wording changes how those records read, so a
    new wording needs a marker of its own."""
    return f"Approval needed: {shown}"


def _placed(raw: str | bytes, ids: dict[str, str]) -> dict[str, Any]:
    """A stored record's JSON with the ids its place names (the hash's key and field) put
    back: the stored form leaves them out; forms written before carry them, and keep them."""
    data: dict[str, Any] = from_json(raw)
    return {**ids, **data}


def _words(record: dict[str, Any], answered: bool = False) -> dict[str, Any]:
    """A stored record's JSON with what ``RequestRecord.stored`` and scripts.ANSWER leave
    out put back: an approval's text where it is its call's ``approval_text``, and, once it
    is ``answered``, the call's hash (of the arguments asked, which the record keeps; one
    answered before 0.3 had none, and reads with it now)."""
    tool, arguments = record.get("tool"), record.get("arguments")
    if isinstance(tool, str) and isinstance(arguments, dict):
        if "text" not in record:
            record["text"] = approval_text(call_text(tool, arguments))
        if answered and "arguments_hash" not in record and record.get("kind") == "approval":
            record["arguments_hash"] = arguments_hash(arguments)
    return record


class RequestRecord(_Frozen):
    """A question or an approval waiting for a human; answered once, by an allowed person."""

    request_id: str
    thread_id: str
    kind: Literal["question", "approval"]
    text: str
    tool: str | None = None
    arguments: JsonObject | None = None
    call_id: str | None = None
    approvers: list[str] = Field(default_factory=list)
    """``channel:address`` of who may decide; empty means anyone on the thread's channel."""
    arguments_hash: str | None = None
    """For an approval: ``model.events.arguments_hash`` of the call; a decision binds to it."""
    approvals_needed: int = 1
    """Distinct people who must approve (the policy's ``quorum``); one rejection rejects."""
    people: dict[str, str] = Field(default_factory=dict)
    """``channel:address`` -> person (the file's ``[people]``), as it was when asked."""
    requester: str | None = None
    """The person (or ``channel:address``) whose message led to the call."""
    self_approval: bool = True
    """False: the requester may not approve their own request."""
    editable: list[str] = Field(default_factory=list)
    """Arguments an approver may change when approving (the policy's ``editable``)."""
    grants: list[str] = Field(default_factory=list)
    """Scopes an approver may approve the tool for (``thread``)."""

    def person(self, channel: str, responder: str) -> str:
        """Who answered, as a person: their name when known, else ``channel:address``."""
        target = f"{channel}:{responder}"
        return self.people.get(target, target)

    created: datetime = Field(default_factory=stamp)
    """To the millisecond, so that it is stored as a number (model.forms.stored_stamp); a
    record stored before says it in ISO 8601."""
    deadline: datetime | None = None
    """After this, the request expires unanswered and the agent is told."""

    def may_answer(self, channel: str, responder: str) -> bool:
        """Questions take anyone's answer; approvals only an approver's (``rest:*`` = any)."""
        if self.kind == "question":
            return True
        if not self.self_approval and self.person(channel, responder) == self.requester:
            return False
        if not self.approvers:
            return True
        for approver in self.approvers:
            ch, _, address = approver.partition(":")
            if ch == channel and address in ("*", responder):
                return True
        return False

    _PLACED: ClassVar[set[str]] = {"request_id", "thread_id"}

    def stored(self) -> bytes:
        """The stored form (``store.keys.requests``): defaults left out (readers fill them
        in, scripts.ANSWER too), and the ids the key and field name already say. So is an
        approval's text where it is ``approval_text`` of its call (some 66 B), and the call's
        id and hash go last: scripts.ANSWER cuts them off once the request is answered, as
        nothing binds to them then (``load`` derives the hash again; the id is the
        ``approval_request`` event's, store.reads): a record that then takes a smaller size
        class in a hash table (bench: 384 -> 160 B)."""
        exclude = set(self._PLACED)
        if self.tool is not None and self.arguments is not None and self._says_its_call():
            exclude.add("text")
        if self.arguments_hash is None:
            return _REQUEST_FORM.to_json(self, exclude_defaults=True, exclude=exclude)
        exclude.update(("call_id", "arguments_hash"))
        body = _REQUEST_FORM.to_json(self, exclude_defaults=True, exclude=exclude)
        if self.call_id is not None:
            body = body[:-1] + b',"call_id":' + to_json(self.call_id) + b"}"
        return body[:-1] + b',"arguments_hash":' + to_json(self.arguments_hash) + b"}"

    def _says_its_call(self) -> bool:
        return self.text == approval_text(call_text(self.tool or "", self.arguments or {}))

    @classmethod
    def load(
        cls, raw: str | bytes, *, request_id: str, thread_id: str, answered: bool = False
    ) -> RequestRecord:
        """A record as stored at ``request_id`` of ``thread_id``'s requests hash, in any form
        (``answered``: its status says so, so its stored form may lack the call's hash)."""
        data = _placed(raw, {"request_id": request_id, "thread_id": thread_id})
        return cls.model_validate(_words(data, answered))


class RequestView(_Frozen):
    """A request with its current status, as the API shows it."""

    request: RequestRecord
    status: RequestStatus
    response: TaggedResponse | None = None
    """The answer that settled it (requests answered before 0.2 do not carry it)."""
    sent: str | None = None
    """The provider's id of the message that last offered it, where a reply can name it
    (None for REST: ``Delivery.mapped``)."""
    approvals_given: int = 0
    """Distinct people who approved so far (an approval's quorum is ``approvals_needed``)."""


OutboxKind = MessageKind


class ApprovalBrief(_Frozen):
    """What an approval message says beside the call, so that a person can decide from it
    (set by the run loop when it asks; items stored before it have none)."""

    agent: str
    requester: str | None = None
    """Who asked: a person, or ``channel:address``."""
    said: str | None = None
    """The message that led to the call (cut to SAID_LIMIT characters)."""
    approvals_needed: int = 1
    approvals_given: int = 0
    deadline: datetime | None = None
    mention: list[str] = Field(default_factory=list)
    """Slack ids of the people asked (users ``U…``, user groups ``S…``), to @-mention."""


SAID_LIMIT = 300
"""Characters of the triggering message an approval message quotes."""


class OutboxItem(_Frozen):
    """One message to a human, to be delivered by the sender of ``to.channel``."""

    outbox_id: str
    thread_id: str
    kind: OutboxKind
    text: str
    to: Origin
    """Who receives it, on which channel, with that channel's routing."""
    request_id: str | None = None
    tool: str | None = None
    arguments: JsonObject | None = None
    editable: list[str] = Field(default_factory=list)
    """For an approval: arguments the approver may change (an Edit action where it exists)."""
    grants: list[str] = Field(default_factory=list)
    """For an approval: scopes it may be approved for (an "Approve for this thread" action)."""
    created: datetime = Field(default_factory=stamp)
    """As a request's: stored as milliseconds (16 B fewer than ISO 8601)."""
    brief: ApprovalBrief | None = None
    """For an approval: who asked, why, quorum and deadline (older items: None)."""

    _PLACED: ClassVar[set[str]] = {"outbox_id", "thread_id"}
    _ASKED: ClassVar[tuple[str, ...]] = ("text", "tool", "arguments", "editable", "grants")
    """What an approval's first offer says as its request does (RequestRecord's fields)."""

    def stored(self, asked: RequestRecord | None = None) -> bytes:
        """The stored form (``store.keys.OUTBOX_BODY``): defaults left out (nulls, empty lists),
        and the ids the key and field name already say. ``asked``: the request the item
        offers, stored beside it; when the item says all of ``_ASKED`` as the request does,
        those are left out too, with the brief's requester (no ``text``: ``load`` takes them
        from the request)."""
        exclude: dict[str, Any] = dict.fromkeys(self._PLACED, True)
        if asked is not None and self.repeats(asked):
            exclude.update(dict.fromkeys(self._ASKED, True))
            exclude["brief"] = {"requester": True}
        if not self.to.plain:
            return _OUTBOX_FORM.to_json(self, exclude_defaults=True, exclude=exclude)
        # A plain recipient as its target, 'rest:bench' (24 B fewer than its object), as
        # the last field: ``kind`` and ``created`` are always written before it.
        exclude["to"] = True
        body = _OUTBOX_FORM.to_json(self, exclude_defaults=True, exclude=exclude)
        return body[:-1] + b',"to":' + to_json(self.to.target) + b"}"

    def repeats(self, request: RequestRecord) -> bool:
        """Whether this item offers ``request`` in its own words (an approval's first ask)."""
        if self.request_id != request.request_id:
            return False
        if self.brief is not None and self.brief.requester != request.requester:
            return False
        return all(getattr(self, f) == getattr(request, f) for f in self._ASKED)

    @classmethod
    def load(
        cls,
        raw: str | bytes,
        *,
        outbox_id: str,
        thread_id: str,
        requests: Mapping[str, str | bytes] | None = None,
    ) -> OutboxItem:
        """An item as stored at ``outbox_id`` of ``thread_id``'s outbox hash, in any form.

        ``requests``: the thread's requests hash (or the one the item offers), for an item
        stored without what its request says; raises KeyError when that is not there."""
        data = _placed(raw, {"outbox_id": outbox_id, "thread_id": thread_id})
        if isinstance(data.get("to"), str):  # a plain recipient (``stored``); else an object
            data["to"] = Origin.of(data["to"])
        if "text" not in data:
            asked = _words(from_json((requests or {})[data["request_id"]]))
            data.update({f: asked[f] for f in cls._ASKED if f in asked})
            if isinstance(data.get("brief"), dict) and "requester" in asked:
                data["brief"] = {**data["brief"], "requester": asked["requester"]}
        return cls.model_validate(data)


# ``created`` always written: its default is the clock's, which a dump may read unchanged.
_REQUEST_FORM = stored_serializer(RequestRecord, ("created",), stamps=("created",))
_OUTBOX_FORM = stored_serializer(OutboxItem, ("created",), stamps=("created",))

DeliveryStatus = Literal["pending", "sending", "sent", "failed", "unknown"]


class Delivery(_Frozen):
    """What a channel's sender reports back: the provider's ids for what went out."""

    provider_id: str
    refs: list[str] = Field(default_factory=list)
    """Further provider ids a reply may point at (each maps back to the thread and request)."""
    detail: dict[str, Any] = Field(default_factory=dict)
    mapped: bool = True
    """Whether a reply can name these ids (a Slack ts, an email Message-ID, a Twilio SID), so
    each is mapped back to its thread; False where none ever does (REST: a reference key
    nobody reads, two Redis writes and some 140 bytes a message for nothing)."""


class ProviderRef(_Frozen):
    """What a provider's id of a message points at: how a reply finds its thread."""

    thread_id: str
    request_id: str | None = None
    outbox_id: str | None = None
    """None for a message a human sent us (we only remember which thread it joined)."""


class OutboxView(_Frozen):
    item: OutboxItem
    status: DeliveryStatus
    attempts: int = 0
    provider_id: str | None = None
    error: str | None = None
    reported: list[str] = Field(default_factory=list)
    """Statuses the provider reported later, in arrival order (Twilio: queued, sent,
    delivered...); beside ``status``, which is what the sender knew when it settled."""


class ThreadSummary(_Frozen):
    """One line of a thread list."""

    meta: ThreadMeta
    state: ThreadState


class ThreadView(_Frozen):
    """A whole thread as the API returns it."""

    meta: ThreadMeta
    state: ThreadState
    events: list[Event]
    inbox: list[Event]
    """Arrived but not yet merged by a worker."""
    requests: list[RequestView]
    outbox: list[OutboxView]
