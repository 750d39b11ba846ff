"""What an approval message says beside the call: who asked and why, which agent, quorum,
deadline, and whom to @-mention in Slack. Pure functions of the configuration and the
thread's events; the run loop attaches the result to each approval it sends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from model.events import ApprovalRequest, Approved, Event, Offered, Rerouted, UserMessage
from model.records import SAID_LIMIT, ApprovalBrief

_SLACK_IDS = ("U", "W", "S")
"""Slack ids a mention can name: users (``W`` in Enterprise Grid) and user groups."""


def mentions(
    asked: Sequence[str], people: Mapping[str, str], approvers: Sequence[str]
) -> list[str]:
    """Slack ids of the people asked: a Slack address asked, or a person (``[people]``) asked
    at any of their addresses who has a Slack one. When that finds nobody (asked on the
    thread itself, or in a channel), the approvers' Slack ids instead."""

    def found(addresses: Sequence[str]) -> list[str]:
        persons = {people.get(a, a) for a in addresses}
        targets = [*addresses, *(t for t, p in people.items() if p in persons)]
        ids: list[str] = []
        for target in targets:
            channel, _, address = target.partition(":")
            if channel == "slack" and address.startswith(_SLACK_IDS) and address not in ids:
                ids.append(address)
        return ids

    return found(asked) or found(approvers)


def said_of(message: UserMessage | None) -> str | None:
    if message is None:
        return None
    text = " ".join(message.text.split())
    return text if len(text) <= SAID_LIMIT else text[: SAID_LIMIT - 1] + "…"


def brief(
    agent: str,
    *,
    requester: str | None,
    said: UserMessage | None,
    needed: int,
    given: int = 0,
    deadline: datetime | None,
    mention: list[str],
) -> ApprovalBrief:
    return ApprovalBrief(
        agent=agent,
        requester=requester,
        said=said_of(said),
        approvals_needed=needed,
        approvals_given=given,
        deadline=deadline,
        mention=mention,
    )


def asked_by(events: Sequence[Event], request_id: str | None = None) -> UserMessage | None:
    """The human message that led to a call: the last one before its request (before the
    end of the log when ``request_id`` is None: the call is being asked now)."""
    last = None
    for event in events:
        if isinstance(event, ApprovalRequest) and event.request_id == request_id:
            break
        if isinstance(event, UserMessage):
            last = event
    return last


def approvals_given(events: Sequence[Event], request_id: str) -> int:
    """Distinct people who approved the request so far (quorum counts people)."""
    return len(
        {
            e.person or f"{e.channel}:{e.responder}"
            for e in events
            if isinstance(e, Approved) and e.request_id == request_id
        }
    )


WITHDRAWN = "Withdrawn: the request changed"
"""What a withdrawn approval's messages say instead of their buttons."""


def offered_at(request: ApprovalRequest, events: Sequence[Event], origin: str) -> list[str]:
    """Every ``channel:address`` an approval was offered at: when asked, at a later stage or
    reminder, or where a failed delivery moved it."""
    rid = request.request_id
    offered = list(request.offered or [origin])
    for e in events:
        if isinstance(e, Offered) and e.request_id == rid:
            offered += e.to
        elif isinstance(e, Rerouted) and e.request_id == rid and e.to:
            offered.append(e.to)
    return offered
