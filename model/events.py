"""Everything that happens on a thread, as one closed union of small frozen events.

The event log is the thread's business state: append-only, serialized through one
TypeAdapter. Execution state (status, lease, counters) lives apart, in the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

JsonObject = dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime = Field(default_factory=utcnow)


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
    outcome: Literal["ok", "rejected", "expired", "unknown"] = "ok"


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


class HumanRequest(_Event):
    """The agent asks a human: a question, or an approval for one tool call."""

    type: Literal["human_request"] = "human_request"
    request_id: str
    kind: Literal["question", "approval"]
    text: str
    tool: str | None = None
    arguments: JsonObject | None = None
    call_id: str | None = None


class HumanResponse(_Event):
    """A human's answer to one request: an answer text, or approve / reject with a comment."""

    type: Literal["human_response"] = "human_response"
    request_id: str
    channel: str
    responder: str
    decision: Literal["approve", "reject"] | None = None
    comment: str | None = None
    answer: str | None = None


class FinalAnswer(_Event):
    """The agent is done for now; this text went to the human."""

    type: Literal["final_answer"] = "final_answer"
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
    | HumanRequest
    | HumanResponse
    | FinalAnswer
    | SystemNote,
    Field(discriminator="type"),
]

EVENT = TypeAdapter[Event](Event)
EVENT_LIST = TypeAdapter[list[Event]](list[Event])

ERROR_EVENTS = (ToolError, LLMError)


def dump_event(event: Event) -> bytes:
    """The stored form: compact JSON, without fields that are unset."""
    return EVENT.dump_json(event, exclude_none=True)


def load_events(raw: list[bytes]) -> list[Event]:
    """Parse a stored list in one call (much cheaper than one validate per event)."""
    if not raw:
        return []
    return EVENT_LIST.validate_json(b"[" + b",".join(raw) + b"]")
