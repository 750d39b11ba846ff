"""Where a human is asked next when a message to them did not arrive: one pure decision.

Every channel reports a permanent delivery failure the same way, as a ``DeliveryFailed``
event on the thread; the reducer answers each one exactly once, with one of the variants
below, and the run loop carries it out under the lease (a ``Rerouted`` event settles it).
A request is offered at its next configured address, else on the thread's origin; when
every place it could go has failed, the thread records an escalation and waits, visibly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model.events import (
    ApprovalRequest,
    DeliveryFailed,
    Event,
    HumanRequest,
    HumanResponse,
    Offered,
    Rerouted,
    SystemNote,
    ToolError,
    ToolResult,
)


@dataclass(frozen=True)
class OfferElsewhere:
    """Offer the pending request at ``to`` (``channel:address``)."""

    failure: DeliveryFailed
    request: HumanRequest
    to: str


@dataclass(frozen=True)
class StillOffered:
    """The request still stands where it was offered besides: nothing to move."""

    failure: DeliveryFailed
    request: HumanRequest
    at: tuple[str, ...]


@dataclass(frozen=True)
class NowhereLeft:
    """Nowhere left to reach a human with this message: escalate, visibly."""

    failure: DeliveryFailed
    request: HumanRequest | None


@dataclass(frozen=True)
class Moot:
    """The request was decided, answered or expired meanwhile: nothing to deliver."""

    failure: DeliveryFailed


Reroute = OfferElsewhere | StillOffered | NowhereLeft | Moot


def next_reroute(
    events: Sequence[Event], origin: str, copies: Sequence[str] = ()
) -> Reroute | None:
    """The first delivery failure not yet answered, and what to do about it.

    ``copies``: the origin's further places (a ``report_to``), asked with it.
    """
    handled = {e.outbox_id for e in events if isinstance(e, Rerouted)}
    failure = next(
        (e for e in events if isinstance(e, DeliveryFailed) and e.outbox_id not in handled),
        None,
    )
    if failure is None:
        return None
    request = _request(events, failure.request_id)
    if request is None:
        if failure.request_id is not None:
            return Moot(failure)  # a request we no longer know of cannot be moved
        return NowhereLeft(failure, None)
    if settled(events, request):
        return Moot(failure)
    failed = {
        e.target
        for e in events
        if isinstance(e, DeliveryFailed) and e.request_id == request.request_id
    }
    offered = offered_at(events, request, origin, copies)
    live = tuple(a for a in offered if a not in failed)
    if live:
        return StillOffered(failure, request, live)
    notify = request.notify if isinstance(request, ApprovalRequest) else []
    for candidate in [*notify, origin, *copies]:
        if candidate not in offered and candidate not in failed:
            return OfferElsewhere(failure, request, candidate)
    return NowhereLeft(failure, request)


def _request(events: Sequence[Event], request_id: str | None) -> HumanRequest | None:
    if request_id is None:
        return None
    return next(
        (e for e in events if isinstance(e, HumanRequest) and e.request_id == request_id), None
    )


def settled(events: Sequence[Event], request: HumanRequest) -> bool:
    for e in events:
        if isinstance(e, HumanResponse) and e.request_id == request.request_id:
            return True
        if isinstance(e, SystemNote) and e.kind == "timeout" and e.request_id == request.request_id:
            return True
        if (
            isinstance(request, ApprovalRequest)
            and isinstance(e, ToolResult | ToolError)
            and e.call_id == request.call_id
        ):
            return True
    return False


def offered_at(
    events: Sequence[Event], request: HumanRequest, origin: str, copies: Sequence[str] = ()
) -> list[str]:
    """Every place the request was offered: when asked, then each reroute's and stage's."""
    asked = request.offered if isinstance(request, ApprovalRequest) else []
    # Questions, and logs before 0.2, were asked on the origin (and its copies).
    offered = list(asked) or [origin, *copies]
    for e in events:
        if isinstance(e, Rerouted) and e.request_id == request.request_id and e.to:
            offered.append(e.to)
        elif isinstance(e, Offered) and e.request_id == request.request_id:
            offered.extend(a for a in e.to if a not in offered)  # later stages, reminders
    return offered
