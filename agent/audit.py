"""The audit trail of approvals, read from the thread's events: no second source of truth.

Every request, offer (first ask, route stage, reminder, reroute), decision, withdrawal,
expiry and the call's outcome is one ``AuditEntry``; ``trail`` is a pure function of a
thread's events, so what the audit says is what the log holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from model.events import (
    ApprovalRequest,
    Approved,
    Event,
    Granted,
    GrantUsed,
    JsonObject,
    Offered,
    Rejected,
    Rerouted,
    SystemNote,
    ToolResult,
    arguments_hash,
)
from store.edits import changed

AuditKind = Literal[
    "requested", "offered", "reminded", "escalated", "rerouted", "approved", "rejected",
    "withdrawn", "expired", "ran", "edited", "granted", "covered",
]  # fmt: skip


class AuditEntry(BaseModel):
    """One step of an approval's life."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    thread_id: str
    request_id: str | None
    kind: AuditKind
    detail: str
    channel: str | None = None
    """For a decision: the channel it came by."""
    responder: str | None = None
    """For a decision: who, as the channel knows them (``rest:<token name>`` is ``rest``+name)."""
    person: str | None = None
    """For an approval: who, as a person ([people])."""
    to: list[str] = []
    """For an offer: the ``channel:address`` asked."""
    arguments_hash: str | None = None
    """For a request and an approval: the hash of the exact arguments."""
    before: JsonObject | None = None
    """For an edit: the call as asked."""
    after: JsonObject | None = None
    """For an edit: the call as the approver changed it (what ran)."""
    by: list[str] = []
    """For a grant and a call it covered: who gave the grant."""


def trail(thread_id: str, events: Sequence[Event]) -> list[AuditEntry]:
    """The audit entries of one thread, in the order they happened."""
    calls: dict[str, str] = {}  # call_id -> request_id
    asked: dict[str, ApprovalRequest] = {}
    out: list[AuditEntry] = []

    def add(e: Event, request_id: str | None, kind: AuditKind, detail: str, **kw: object) -> None:
        out.append(
            AuditEntry.model_validate(
                {"at": e.at, "thread_id": thread_id, "request_id": request_id, "kind": kind}
                | {"detail": detail, **kw}
            )
        )

    for e in events:
        match e:
            case ApprovalRequest():
                calls[e.call_id] = e.request_id
                asked[e.request_id] = e
                add(
                    e,
                    e.request_id,
                    "requested",
                    e.text,
                    to=list(e.offered),
                    arguments_hash=arguments_hash(e.arguments),
                )
            case Offered(kind="stage") if e.to:
                add(e, e.request_id, "escalated", e.text, to=list(e.to))
            case Offered(kind="remind") if e.to:
                add(e, e.request_id, "reminded", e.text, to=list(e.to))
            case Rerouted(to=str(to)):
                add(e, e.request_id, "rerouted", e.text, to=[to])
            case Approved():
                add(
                    e,
                    e.request_id,
                    "approved",
                    e.comment or "",
                    channel=e.channel,
                    responder=e.responder,
                    person=e.person,
                    arguments_hash=e.arguments_hash,
                )
                if e.arguments is not None and e.request_id in asked:
                    before = asked[e.request_id].arguments
                    shown = ", ".join(changed(before, e.arguments))
                    add(
                        e,
                        e.request_id,
                        "edited",
                        f"changed {shown}",
                        before=before,
                        after=e.arguments,
                        channel=e.channel,
                        responder=e.responder,
                        person=e.person,
                    )
            case Granted():
                who = ", ".join(e.by)
                add(e, e.request_id, "granted", f"{e.tool} for this {e.scope}, by {who}", by=e.by)
            case GrantUsed():
                calls[e.call_id] = e.request_id
                detail = f"{e.tool} ran without asking, covered by the grant of {e.request_id}"
                add(
                    e,
                    e.request_id,
                    "covered",
                    detail,
                    by=e.by,
                    arguments_hash=e.arguments_hash,
                )
            case Rejected():
                add(
                    e,
                    e.request_id,
                    "rejected",
                    e.comment or "",
                    channel=e.channel,
                    responder=e.responder,
                )
            case ToolResult(outcome="withdrawn" | "expired" as outcome) if e.call_id in calls:
                add(e, calls[e.call_id], outcome, e.output)
            case ToolResult(outcome="ok") if e.call_id in calls:
                add(e, calls[e.call_id], "ran", e.output)
            case SystemNote(kind="timeout") if e.request_id:
                add(e, e.request_id, "expired", e.text)
            case _:
                pass
    return out
