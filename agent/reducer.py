"""The stateless reducer: the same events in, the same next step out.

``next_step`` is the only place the LLM is called. ``plan`` is plain code: from the events
(and the tool-call ledger) it says what deterministic work comes next, if any, before the
model is asked anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from agent import edits
from agent.context import PROMPTS_DIR, render
from agent.escalation import Escalation, next_escalation
from agent.fitting import NO_PRIOR, Prior
from agent.llm import LLM
from agent.reroute import Reroute, next_reroute
from agent.steps import Decision, parse_step, response_schema
from agent.tools import Agent
from agent.waiting import WaitAction, next_wait, waiting_on
from model.events import (
    AgentStep,
    Answered,
    ApprovalDue,
    ApprovalRequest,
    Approved,
    CallDue,
    CallReported,
    Cancelled,
    CancelRequested,
    DeliveryFailed,
    Event,
    FinalAnswer,
    GrantUsed,
    HumanRequest,
    LLMError,
    Offered,
    Rejected,
    Rerouted,
    Summarized,
    SystemNote,
    ToolError,
    ToolResult,
    ToolStarted,
    UserMessage,
)
from model.records import Status


async def next_step(
    agent: Agent, events: Sequence[Event], llm: LLM, prior: Prior = NO_PRIOR
) -> Decision:
    """Ask the model for the next step of this thread. Raises LLMFailed.

    ``prior``: the compacted prefix from the thread's snapshot, ``events`` the log after it."""
    context = render(agent, events, PROMPTS_DIR, prior=prior)
    completion = await llm.complete(context.messages, response_schema(agent))
    return replace(parse_step(agent, completion.text), usage=completion.usage)


@dataclass(frozen=True)
class RunApproved:
    """An approved call that has not run yet."""

    request: ApprovalRequest
    response: Approved
    by: tuple[str, ...] = field(default=(), compare=False)
    """Everyone whose approval counted, in order (a grant names them); derived from the same
    events, so not part of what identifies the action."""


@dataclass(frozen=True)
class RunGranted:
    """A call a grant covered (``GrantUsed`` recorded) that has not run yet."""

    used: GrantUsed
    step: AgentStep


@dataclass(frozen=True)
class RecordRejection:
    """A rejected call whose rejection has not reached the model yet."""

    request: ApprovalRequest
    response: Rejected


@dataclass(frozen=True)
class RecordExpiry:
    """An approval whose deadline passed with no decision: the call will not run."""

    request: ApprovalRequest


@dataclass(frozen=True)
class Withdraw:
    """A human wrote while this approval was pending: the ask may have changed."""

    request: ApprovalRequest


@dataclass(frozen=True)
class Dispatch:
    """A decided step that was never dispatched (its run stopped right after deciding)."""

    step: AgentStep


@dataclass(frozen=True)
class Decide:
    """New input since the agent last spoke: ask the model."""


@dataclass(frozen=True)
class Idle:
    """Nothing to do until a human says something."""


Action = (
    WaitAction
    | Reroute
    | Escalation
    | RunApproved
    | RunGranted
    | RecordRejection
    | RecordExpiry
    | Withdraw
    | Dispatch
    | Decide
    | Idle
)

# Notes that record what happened around the thread, not input the agent must react to.
_BACKGROUND_NOTES = ("merged_messages", "delivery_failure")
# Delivery and timer bookkeeping: the run loop answers it (a reroute, a stage, a reminder),
# never the model.
_BACKGROUND_EVENTS = (DeliveryFailed, Rerouted, ApprovalDue, Offered, Summarized)
# Input about started calls and cancels: answered first thing by plan (agent.waiting).
_WAIT_INPUT = (CallReported, CallDue, CancelRequested)
_PASSED_OVER = (*_BACKGROUND_EVENTS, *_WAIT_INPUT)


def plan(
    events: Sequence[Event], ledger: Mapping[str, str], origin: str, copies: Sequence[str] = ()
) -> Action:
    """What the deterministic code does next, given the thread so far.

    ``origin`` is the thread's own ``channel:address``, the last place a request can go;
    ``copies``, the origin's further places (a trigger's or schedule's ``report_to``).
    """
    # Each pass below looks for some kind of event and can only act on a thread that has
    # one: the kinds the thread holds, looked up once, skip the passes that would find
    # nothing (most threads have no started call, failed delivery, timer or grant). plan
    # runs before every step of every run: some 15 -> 6 µs a call on a five-event thread.
    held = 0
    for kind in {type(e) for e in events}:
        held |= _passes(kind)
    if held & _WAIT and (waited := next_wait(events)) is not None:
        return waited
    if held & _REROUTE:
        reroute = next_reroute(events, origin, copies)
        if reroute is not None:
            return reroute
    if held & _ESCALATE:
        escalation = next_escalation(events, origin)
        if escalation is not None:
            return escalation
    approvals: dict[str, ApprovalRequest] = {}
    settled: set[str] = set()
    for e in events:
        if isinstance(e, ApprovalRequest):
            approvals[e.request_id] = e
        elif isinstance(e, ToolResult | ToolError) and e.call_id:
            settled.add(e.call_id)
    approvers: dict[str, dict[str, None]] = {}
    for e in events if approvals else ():  # each case below is about a known request
        if isinstance(e, Approved | Rejected) and e.request_id in approvals:
            request = approvals[e.request_id]
            if request.call_id in settled or request.call_id in ledger:
                continue
            if isinstance(e, Approved):
                if not edits.binds(request, e):
                    continue  # approved something else: it does not count for this call
                people = approvers.setdefault(e.request_id, {})
                who = e.person or f"{e.channel}:{e.responder}"
                if _completes_only(e) and who not in people and len(people) + 1 < request.quorum:
                    continue  # an edit or a grant counts only as the quorum's last approval
                people.setdefault(who, None)
                if len(people) < request.quorum:
                    continue  # counted; the call waits for more people
                return RunApproved(request, e, tuple(people))
            return RecordRejection(request, e)
        if isinstance(e, SystemNote) and e.kind == "timeout" and e.request_id in approvals:
            request = approvals[e.request_id]
            if request.call_id not in settled and request.call_id not in ledger:
                return RecordExpiry(request)

    if held & _GRANT:
        steps = {e.call_id: e for e in events if isinstance(e, AgentStep) and e.call_id}
        for e in events:  # a call a grant covered, recorded but not run (its run stopped)
            if isinstance(e, GrantUsed) and e.call_id in steps.keys() - settled - ledger.keys():
                return RunGranted(e, steps[e.call_id])

    asked: ApprovalRequest | None = None
    for e in events if approvals else ():  # an approval still open, and a message after it
        if isinstance(e, ApprovalRequest):
            asked = e
        elif (
            isinstance(e, UserMessage)
            and asked is not None
            and asked.withdraw_on_message
            and asked.call_id not in settled
            and asked.call_id not in ledger
        ):
            return Withdraw(asked)

    last = _last_significant(events)
    if last is None:
        return Idle()
    if isinstance(last, AgentStep):
        if last.call_id and (last.call_id in ledger or last.call_id in settled):
            return Idle()
        return Dispatch(last)
    if isinstance(last, UserMessage | ToolResult | ToolError | LLMError | Answered):
        return Decide()
    if isinstance(last, SystemNote) and last.kind == "timeout":
        return Decide()
    return Idle()


# The passes of plan that only a thread holding some kind of event needs, by the kinds
# that call for each (next_wait: a cancel, a started call, its result or its timeout).
_WAIT, _REROUTE, _ESCALATE, _GRANT = 1, 2, 4, 8
_PASSES: tuple[tuple[int, tuple[type[Event], ...]], ...] = (
    (_WAIT, (CancelRequested, CallReported, CallDue, ToolStarted)),
    (_REROUTE, (DeliveryFailed,)),
    (_ESCALATE, (ApprovalDue,)),
    (_GRANT, (GrantUsed,)),
)


@cache
def _passes(kind: type[Event]) -> int:
    """The passes an event of this class calls for (``isinstance``'s sense: subclasses too)."""
    return sum(flag for flag, kinds in _PASSES if issubclass(kind, kinds))


def _completes_only(approval: Approved) -> bool:
    return approval.arguments is not None or approval.grant is not None


def resting_status(events: Sequence[Event]) -> Status:
    """The status of a thread with nothing to do, from what the agent last said."""
    last = _last_significant(events)
    if isinstance(last, Cancelled):
        return "cancelled"
    if isinstance(last, HumanRequest | SystemNote):
        return "awaiting_human"
    if isinstance(last, ToolStarted | FinalAnswer) and waiting_on(events):
        return "waiting"  # for a started call's result, not for a human
    if isinstance(last, FinalAnswer):
        return "done"
    return "idle"


def _last_significant(events: Sequence[Event]) -> Event | None:
    for e in reversed(events):
        if isinstance(e, SystemNote) and e.kind in _BACKGROUND_NOTES:
            continue
        if isinstance(e, _PASSED_OVER):
            continue
        if isinstance(e, Approved | Rejected):
            continue  # settled above: its ToolResult is what follows it
        return e
    return None
