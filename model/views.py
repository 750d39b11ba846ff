"""Digests: what a person watching the service sees of a thread or a request at a glance.

The console's inbox and thread list are made of these, and its live stream sends them when a
thread changes. They are read models, derived from what is stored; nothing stores them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from model.events import Event
from model.records import (
    DeliveryStatus,
    Origin,
    OutboxKind,
    OutboxView,
    RequestRecord,
    RequestStatus,
    ThreadMeta,
    ThreadState,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Said(_Frozen):
    """One line of the conversation: who said it, through which channel, when."""

    by: str
    channel: str
    text: str
    at: datetime


class Offer(_Frozen):
    """Where a request was sent to a human, and how that delivery went."""

    channel: str
    address: str
    status: DeliveryStatus


class RequestDigest(_Frozen):
    """A request with what an operator needs to decide it without opening the thread."""

    request: RequestRecord
    status: RequestStatus
    agent: str
    origin: Origin
    asked: Said | None = None
    """The human message that led to the request (the last one before it)."""
    offers: list[Offer] = Field(default_factory=list)


class ThreadDigest(_Frozen):
    """One line of the thread list."""

    meta: ThreadMeta
    state: ThreadState
    first: Said | None = None
    """The message that started the thread."""
    last_word: str | None = None
    """The agent's latest message to a human (an answer, a question, an approval request)."""
    last_word_kind: OutboxKind | None = None
    last_activity: datetime
    events: int
    """Length of the event log."""
    pending: int = 0


class ThreadChange(_Frozen):
    """What changed on one thread, as the live stream sends it.

    ``events`` are the log's entries from index ``events_from`` on; a receiver that holds
    fewer than ``events_from`` entries has missed some and reads the thread again.
    """

    thread: ThreadDigest
    requests: list[RequestDigest]
    events_from: int
    events: list[Event]
    inbox: list[Event]
    outbox: list[OutboxView]
