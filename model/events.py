"""Everything that happens on a thread, as one closed union of small frozen events.

The event log is the thread's business state: append-only, serialized through one
TypeAdapter. Execution state (status, lease, counters) lives apart, in the store.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from model.forms import stored_serializer

JsonObject = dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


def stamp() -> datetime:
    """When an event happens: now, to the millisecond, so that its stored form is a number
    of milliseconds (model.forms), not a 27-character string. Made from the clock's
    milliseconds (the float's error, under 0.3 µs this century, rounds away to the
    microsecond), not by ``replace``: its keyword parsing cost more than the rest, once for
    every event, request and outbox item."""
    return datetime.fromtimestamp(time.time_ns() // 1_000_000 / 1000, UTC)


def arguments_hash(arguments: JsonObject) -> str:
    """SHA-256 of the arguments as canonical JSON: what a decision binds to."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime = Field(default_factory=stamp)


class UserMessage(_Event):
    """A human wrote to the agent on some channel."""

    type: Literal["user_message"] = "user_message"
    channel: str
    sender: str
    text: str
    message_id: str | None = None
    """The provider's id of the message (Slack ts, email Message-ID, Twilio MessageSid)."""


class AgentStep(_Event):
    """The model chose its next step; the prompt version that produced it is stamped on it."""

    type: Literal["agent_step"] = "agent_step"
    intent: str
    arguments: JsonObject = Field(default_factory=dict)
    prompt: str
    call_id: str | None = None
    """Set when the intent is a tool call: binds the step, its approval and its result."""
    # What the model call cost, from its response (optional: older logs have none of these).
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: int | None = None


class ToolResult(_Event):
    """What a tool returned, or the human's verdict standing in for it."""

    type: Literal["tool_result"] = "tool_result"
    call_id: str
    tool: str
    output: str
    outcome: Literal["ok", "rejected", "expired", "unknown", "withdrawn"] = "ok"


class ToolError(_Event):
    """A tool call that failed: bad arguments, a non-zero exit, an HTTP error, a timeout."""

    type: Literal["tool_error"] = "tool_error"
    call_id: str | None = None
    tool: str
    error: str


LLMErrorKind = Literal[
    "invalid_output", "timeout", "rate_limited", "unavailable", "not_configured", "refused"
]


class LLMError(_Event):
    """The model could not give a usable next step."""

    type: Literal["llm_error"] = "llm_error"
    kind: LLMErrorKind
    error: str


class Question(_Event):
    """The agent asks a human something; the answer comes back as ``Answered``."""

    type: Literal["question"] = "question"
    request_id: str
    text: str


class ApprovalStage(BaseModel):
    """One stage of an approval's route, as it stood when the request was made."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    notify: list[str]
    after: float = 0.0
    """Seconds after the request that this stage is asked."""


class ApprovalRequest(_Event):
    """The agent asks a human to approve one tool call with these exact arguments."""

    type: Literal["approval_request"] = "approval_request"
    request_id: str
    text: str
    tool: str
    arguments: JsonObject
    call_id: str
    notify: list[str] = Field(default_factory=list)
    """``channel:address`` the configuration says to ask, in order; empty: the thread's origin."""
    offered: list[str] = Field(default_factory=list)
    """``channel:address`` it was offered at when asked (empty in logs written before 0.2:
    read as the origin)."""
    stages: list[ApprovalStage] = Field(default_factory=list)
    """The route, when the tool has one: stage 1 is ``offered``, later ones come on a timer."""
    remind_every: float | None = None
    """Seconds between reminders to the current stage's addresses, until decided."""
    on_deadline: Literal["reject", "expire"] = "expire"
    """What the deadline does to an undecided call: never a silent approve."""
    quorum: int = 1
    """Distinct people who must approve before the call runs."""
    withdraw_on_message: bool = False
    """A human message on the thread while this is pending withdraws it (``on_new_message``)."""
    editable: list[str] = Field(default_factory=list)
    """Arguments an approver may change when approving (the policy's ``editable``)."""
    grants: list[Literal["thread"]] = Field(default_factory=list)
    """Scopes an approver may approve the tool for (the policy's ``grants``)."""


HumanRequest = Question | ApprovalRequest
"""A request to a human: the thread pauses until it is answered, expires or is moved."""


class _Response(_Event):
    request_id: str
    channel: str
    responder: str
    """Who answered, as the channel knows them (a Slack user id, an address, a number)."""


Verdict = Literal["approve", "reject"]


class Approved(_Response):
    """An approver approved the call of an ``ApprovalRequest``."""

    type: Literal["approved"] = "approved"
    comment: str | None = None
    arguments_hash: str | None = None
    """``arguments_hash`` of the call approved (set by the store; absent in logs before 0.3)."""
    person: str | None = None
    """Who approved, as a person (``[people]``); quorum counts these, not addresses."""
    arguments: JsonObject | None = None
    """The whole call as the approver edited it (only ``editable`` fields differ); None: the
    call as asked. When set, ``arguments_hash`` is this call's hash: the edited call runs."""
    grant: Literal["thread"] | None = None
    """``thread``: approved for the rest of the thread (the policy's ``grants``)."""
    verdict: ClassVar[Verdict] = "approve"


class Rejected(_Response):
    """An approver rejected the call; the model hears why, as the tool's result."""

    type: Literal["rejected"] = "rejected"
    comment: str | None = None
    verdict: ClassVar[Verdict] = "reject"


def decided(
    verdict: Verdict, *, request_id: str, channel: str, responder: str, comment: str | None = None
) -> Approved | Rejected:
    """The decision a channel read (a button, YES / NO, APPROVE / REJECT) as its event."""
    kind = Approved if verdict == "approve" else Rejected
    return kind(request_id=request_id, channel=channel, responder=responder, comment=comment)


class Answered(_Response):
    """A human answered a ``Question``."""

    type: Literal["answered"] = "answered"
    answer: str


HumanResponse = Approved | Rejected | Answered
"""A human's answer to one request, bound to its id."""
TaggedResponse = Annotated[HumanResponse, Field(discriminator="type")]
"""The same, for a field that holds one (validated by its tag)."""


class _LegacyRequest(_Event):
    """``human_request`` as version 0.1 stored it: read, then upgraded (never written)."""

    type: Literal["human_request"]
    request_id: str
    kind: Literal["question", "approval"]
    text: str
    tool: str | None = None
    arguments: JsonObject | None = None
    call_id: str | None = None

    def upgrade(self) -> HumanRequest:
        if self.kind == "question" or not (self.tool and self.call_id):
            return Question(at=self.at, request_id=self.request_id, text=self.text)
        return ApprovalRequest(
            at=self.at,
            request_id=self.request_id,
            text=self.text,
            tool=self.tool,
            arguments=self.arguments or {},
            call_id=self.call_id,
        )


class _LegacyResponse(_Event):
    """``human_response`` as version 0.1 stored it: read, then upgraded (never written)."""

    type: Literal["human_response"]
    request_id: str
    channel: str
    responder: str
    decision: Literal["approve", "reject"] | None = None
    comment: str | None = None
    answer: str | None = None

    def upgrade(self) -> HumanResponse:
        who = {"at": self.at, "request_id": self.request_id, "channel": self.channel}
        if self.decision == "approve":
            return Approved(**who, responder=self.responder, comment=self.comment)
        if self.decision == "reject":
            return Rejected(**who, responder=self.responder, comment=self.comment)
        return Answered(**who, responder=self.responder, answer=self.answer or "")


class FinalAnswer(_Event):
    """The agent is done for now; this text went to the human."""

    type: Literal["final_answer"] = "final_answer"
    text: str


MessageKind = Literal["message", "question", "approval", "final", "notice", "withdrawn"]
"""What an outbox item carries to a human (``withdrawn``: take an approval's buttons away
where its channel can change a message it posted: Slack)."""


class DeliveryFailed(_Event):
    """A message to a human did not arrive, or may not have: reported by its channel.

    Permanent failures only (a bounce, a 5xx from the relay, a Slack channel that does not
    exist, a failed or undelivered text, an opt-out), and attempts whose outcome is unknown
    on a channel that must not send twice. The run loop decides what happens next.
    """

    type: Literal["delivery_failed"] = "delivery_failed"
    outbox_id: str
    message: MessageKind
    channel: str
    address: str
    reason: str
    outcome: Literal["failed", "unknown"] = "failed"
    request_id: str | None = None

    @property
    def target(self) -> str:
        return f"{self.channel}:{self.address}"


class Rerouted(_Event):
    """What the run loop did about one failed delivery: offered the request elsewhere, or
    found nowhere left to offer it (``to`` is None; an escalation note follows)."""

    type: Literal["rerouted"] = "rerouted"
    outbox_id: str
    """The failed delivery this settles."""
    request_id: str | None = None
    to: str | None = None
    """``channel:address`` the request was offered at instead."""
    text: str


class Granted(_Event):
    """A grant came into force: later calls of ``tool`` on this thread run without asking.

    Appended by the run loop when the approval that carried it is complete; a grant lives in
    one thread's log, so it cannot cross to another thread.
    """

    type: Literal["granted"] = "granted"
    request_id: str
    """The approval that carried the grant."""
    tool: str
    scope: Literal["thread"] = "thread"
    by: list[str]
    """Who approved it, as people (or ``channel:address``), in the order they approved."""


class GrantUsed(_Event):
    """A call of a granted tool that ran without asking, covered by the grant of ``request_id``."""

    type: Literal["grant_used"] = "grant_used"
    call_id: str
    tool: str
    request_id: str
    """The approval that carried the grant (see ``Granted``)."""
    by: list[str]
    arguments_hash: str


TimerKind = Literal["stage", "remind"]


class ApprovalDue(_Event):
    """A durable timer of a pending approval came due: a later stage, or a reminder.

    Appended by whichever worker claimed the timer; the run loop answers it with ``Offered``.
    """

    type: Literal["approval_due"] = "approval_due"
    timer: str
    """The timer's own id (unique per request, kind and number): ``Offered`` settles it."""
    request_id: str
    kind: TimerKind
    n: int
    """The stage index (from 0) or the reminder's number (from 1)."""


class Offered(_Event):
    """What the run loop did about one ``ApprovalDue``: asked ``to`` (a stage, a reminder),
    or nobody (``to`` empty) because the request was settled meanwhile."""

    type: Literal["offered"] = "offered"
    timer: str
    request_id: str
    kind: TimerKind
    to: list[str] = Field(default_factory=list)
    text: str


class Summarized(_Event):
    """The summary line of one compacted turn, written by a model call (``summarize =
    "model"``) and kept, so every later run and replay shows the same text. ``by`` "code":
    the model call failed, ``error`` says why, and the code's line stands for it."""

    type: Literal["summarized"] = "summarized"
    turn: int
    """The turn, counted from 0 (a turn starts at each human message)."""
    text: str
    by: Literal["model", "code"] = "model"
    error: str | None = None


class ToolStarted(_Event):
    """A long-running tool (or a handoff to another agent) started; its result comes later.

    The thread waits (status ``waiting``) until a ``CallReported`` or ``CallDue`` for this call
    arrives. For a handoff, ``agent`` is the child's agent and ``external_id`` its thread.
    """

    type: Literal["tool_started"] = "tool_started"
    call_id: str
    tool: str
    external_id: str
    timeout: float | None = None
    """Seconds the result may take before the call fails as timed out (None: no limit)."""
    agent: str | None = None
    withdraw_on_message: bool = False
    """A handoff whose agent has ``on_new_message = "withdraw"``: a human message on this
    thread before the child answers withdraws the call and cancels the child."""


class CallReported(_Event):
    """The result of a started call arrived (its callback, or a child thread's final answer).

    Stored once per call (``store.calls``); the run loop turns it into the call's
    ``ToolResult`` (``result``) or ``ToolError`` (``error``).
    """

    type: Literal["call_reported"] = "call_reported"
    call_id: str
    outcome: Literal["result", "error"]
    text: str
    by: str
    """Who reported: ``rest:<name>``, ``signed`` (a per-call URL), ``thread:<child id>``."""


class CallDue(_Event):
    """A started call's timeout passed with no result (a durable timer, fired once)."""

    type: Literal["call_due"] = "call_due"
    call_id: str


class CancelRequested(_Event):
    """Someone asked to cancel the thread (``POST /v1/threads/{id}/cancel``, or its parent)."""

    type: Literal["cancel_requested"] = "cancel_requested"
    by: str
    reason: str = ""


class Cancelled(_Event):
    """The run loop cancelled the thread: pending requests withdrawn, children cancelled."""

    type: Literal["cancelled"] = "cancelled"
    text: str


SystemNoteKind = Literal[
    "timeout", "escalation", "merged_messages", "step_limit", "delivery_failure", "recovered"
]


class SystemNote(_Event):
    """Something the service itself observed about the thread."""

    type: Literal["system_note"] = "system_note"
    kind: SystemNoteKind
    text: str
    request_id: str | None = None
    """For a timeout: the request whose deadline passed."""


Event = Annotated[
    UserMessage
    | AgentStep
    | ToolResult
    | ToolError
    | LLMError
    | Question
    | ApprovalRequest
    | Approved
    | Rejected
    | Answered
    | FinalAnswer
    | SystemNote
    | DeliveryFailed
    | Rerouted
    | ApprovalDue
    | Offered
    | Summarized
    | ToolStarted
    | CallReported
    | CallDue
    | CancelRequested
    | Cancelled
    | Granted
    | GrantUsed,
    Field(discriminator="type"),
]

# What a stored log may hold: today's events, and the forms older versions wrote.
_Stored = Annotated[Event | _LegacyRequest | _LegacyResponse, Field(discriminator="type")]

EVENT = TypeAdapter[Event](Event)
RESPONSE = TypeAdapter[HumanResponse](TaggedResponse)
_STORED_LIST = TypeAdapter[list[_Stored]](list[_Stored])

ERROR_EVENTS = (ToolError, LLMError)


# Each event's own stored serializer (model.forms): the union's (``EVENT``) would first look
# for the member the event belongs to, about twice the time.
_STORED_FORMS = {
    cls: stored_serializer(cls, ("type", "at"), stamps=("at",))
    for cls in get_args(get_args(Event)[0])
}


def dump_event(event: Event) -> bytes:
    """The stored form: compact JSON, without fields that are unset or hold their default
    (an approval's empty lists, its quorum of one): loading fills them in again."""
    return _STORED_FORMS[type(event)].to_json(event, exclude_none=True, exclude_defaults=True)


def load_events(raw: list[bytes]) -> list[Event]:
    """Parse a stored list in one call (much cheaper than one validate per event)."""
    if not raw:
        return []
    loaded = _STORED_LIST.validate_json(b"[" + b",".join(raw) + b"]")
    return [e.upgrade() if isinstance(e, _LegacyRequest | _LegacyResponse) else e for e in loaded]
