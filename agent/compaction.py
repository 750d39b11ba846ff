"""Which stretches of a long thread the model sees as a one-line summary, and those lines.

A thread is cut into turns, each starting at a human's message. A turn is *settled* when
nothing in it is still open: every request in it was answered, decided or expired, and no
error in it is still the latest word (``context.visible_events`` has already dropped errors
a later success resolved). The oldest settled turns are the ones compacted; the latest
``KEEP_TURNS`` turns, and everything from the first open item on, stay verbatim.

Summaries are written by code from the events, so the same events give the same lines.
Everything here is pure: no template, no token counting (``agent.context`` does both).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from model.events import (
    ERROR_EVENTS,
    AgentStep,
    Answered,
    ApprovalRequest,
    Approved,
    Event,
    FinalAnswer,
    Granted,
    HumanRequest,
    LLMError,
    Question,
    Rejected,
    SystemNote,
    ToolError,
    ToolResult,
    UserMessage,
)

KEEP_TURNS = 2
"""The latest turns are always shown verbatim: the model needs the conversation's thread."""
SNIPPET = 80
"""Characters of a message or a result kept in its turn's summary line."""


@dataclass(frozen=True)
class Turn:
    """Visible events ``start`` to ``end`` (exclusive), from one human message to the next."""

    start: int
    end: int


@dataclass(frozen=True)
class Compaction:
    """What the model was shown as summaries instead of the events themselves."""

    turns: int
    """Turns replaced by a summary line (the oldest ones)."""
    events: int
    """Visible events those turns held."""
    omitted: int = 0
    """Of those turns, the oldest whose summary lines did not fit either: only counted."""


def turns(events: Sequence[Event]) -> list[Turn]:
    starts = [i for i, e in enumerate(events) if isinstance(e, UserMessage) and i > 0]
    bounds = [0, *starts, len(events)]
    return [Turn(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def first_open(events: Sequence[Event]) -> int:
    """Index of the earliest event still open (len(events) if none): kept verbatim from there."""
    # Request ids answered or expired, and call ids that have a result.
    closed = {e.request_id for e in events if isinstance(e, Approved | Rejected | Answered)}
    closed |= {e.call_id for e in events if isinstance(e, ToolResult)}
    closed |= {
        e.request_id
        for e in events
        if isinstance(e, SystemNote) and e.kind == "timeout" and e.request_id
    }
    for i, e in enumerate(events):
        settled_call = isinstance(e, ApprovalRequest) and e.call_id in closed
        if isinstance(e, HumanRequest) and e.request_id not in closed and not settled_call:
            return i
        if isinstance(e, ERROR_EVENTS):
            return i  # still visible, so no later success resolved it: the last error
    return len(events)


def compactable(events: Sequence[Event]) -> list[Turn]:
    """The turns that may be summarized, oldest first."""
    all_turns = turns(events)
    keep_from = min([first_open(events), *(t.start for t in all_turns[-KEEP_TURNS:])])
    return [t for t in all_turns if t.end <= keep_from]


def summary_line(events: Sequence[Event]) -> str:
    """One turn in a line: who asked what, what the agent did, how it ended."""
    parts: list[str] = []
    for e in events:
        part = _part(e)
        if part:
            parts.append(part)
    return " | ".join(parts)


def _part(e: Event) -> str:
    if isinstance(e, UserMessage):
        return f"{e.sender} via {e.channel}: {_snip(e.text)}"
    if isinstance(e, AgentStep) and e.call_id:
        args = ", ".join(f"{k}={v}" for k, v in e.arguments.items())
        return f"{e.intent}({_snip(args)})"
    if isinstance(e, ToolResult):
        return f"{e.tool} {e.outcome}: {_snip(e.output)}"
    if isinstance(e, ToolError):
        return f"{e.tool} failed: {_snip(e.error)}"
    if isinstance(e, LLMError):
        return f"model error: {e.kind}"
    if isinstance(e, Approved):
        edited = " (edited)" if e.arguments is not None else ""
        return f"approved by {e.responder}{edited}"
    if isinstance(e, Granted):
        return f"granted {e.tool} for this {e.scope} by {', '.join(e.by)}"
    if isinstance(e, Question):
        return f"asked: {_snip(e.text)}"
    if isinstance(e, Answered):
        return f"{e.responder} answered: {_snip(e.answer)}"
    if isinstance(e, FinalAnswer):
        return f"said: {_snip(e.text)}"
    if isinstance(e, SystemNote) and e.kind not in ("merged_messages", "delivery_failure"):
        return f"{e.kind}: {_snip(e.text)}"
    return ""  # approval requests, rejections, reroutes: the result or the next line says it


def _snip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET else flat[: SNIPPET - 1] + "…"
