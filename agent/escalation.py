"""What a due approval timer means: ask the next stage, remind, or nothing. One pure decision.

Timers (store.timers) put an ``ApprovalDue`` event on the thread when a later route stage or
a reminder comes due; the reducer answers each exactly once with one of the variants below,
and the run loop carries it out under the lease (an ``Offered`` event settles it). Earlier
stages stay valid: a later stage adds people, it takes nobody's say away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.reroute import offered_at, settled
from model.events import ApprovalDue, ApprovalRequest, Event, Offered


@dataclass(frozen=True)
class OfferStage:
    """The next stage of the route is due: ask ``to`` (its addresses not yet asked)."""

    due: ApprovalDue
    request: ApprovalRequest
    to: tuple[str, ...]


@dataclass(frozen=True)
class Remind:
    """A reminder is due: ask the current stage's addresses again."""

    due: ApprovalDue
    request: ApprovalRequest
    to: tuple[str, ...]


@dataclass(frozen=True)
class TimerMoot:
    """The request was decided, expired or is unknown: nobody is asked."""

    due: ApprovalDue


Escalation = OfferStage | Remind | TimerMoot


def next_escalation(events: Sequence[Event], origin: str) -> Escalation | None:
    """The first due timer not yet answered, and what to do about it."""
    handled = {e.timer for e in events if isinstance(e, Offered)}
    due = next((e for e in events if isinstance(e, ApprovalDue) and e.timer not in handled), None)
    if due is None:
        return None
    request = next(
        (e for e in events if isinstance(e, ApprovalRequest) and e.request_id == due.request_id),
        None,
    )
    if request is None or settled(events, request):
        return TimerMoot(due)
    if due.kind == "stage":
        if due.n >= len(request.stages):
            return TimerMoot(due)  # a route shortened since: nothing configured to ask
        asked = offered_at(events, request, origin)
        return OfferStage(
            due, request, tuple(a for a in request.stages[due.n].notify if a not in asked)
        )
    return Remind(due, request, current_stage(events, request, origin))


def current_stage(
    events: Sequence[Event], request: ApprovalRequest, origin: str
) -> tuple[str, ...]:
    """The addresses of the latest stage asked (the request's first offer before any)."""
    reached = [
        e.timer
        for e in events
        if isinstance(e, Offered) and e.request_id == request.request_id and e.kind == "stage"
    ]
    stage = max((int(t.rsplit(":", 1)[1]) for t in reached), default=0)
    if request.stages and stage < len(request.stages):
        return tuple(request.stages[stage].notify)
    return tuple(request.offered) or (origin,)
