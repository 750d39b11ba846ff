"""What a thread that waits (for a started call, a child agent, a cancel) does next. Pure.

A long-running tool or a handoff leaves a ``ToolStarted`` on the thread; its result comes
back as a ``CallReported`` (the callback, the child's answer) or a ``CallDue`` (its timeout),
each stored once per call by store.calls. The reducer answers each with ``FinishCall``; a
``CancelRequested`` not yet answered with ``Cancelled`` comes before everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model.events import (
    CallDue,
    CallReported,
    Cancelled,
    CancelRequested,
    Event,
    ToolError,
    ToolResult,
    ToolStarted,
    UserMessage,
)


@dataclass(frozen=True)
class FinishCall:
    """A started call's result (or its timeout) arrived: it becomes the call's result."""

    started: ToolStarted
    report: CallReported | CallDue


@dataclass(frozen=True)
class WithdrawHandoff:
    """A human wrote while a handoff waited for its child: the ask changed, so the call is
    withdrawn, the child cancelled, and the model decides again with the new message."""

    started: ToolStarted


@dataclass(frozen=True)
class Cancel:
    """Someone asked to cancel the thread: withdraw what is pending, cancel its children."""

    request: CancelRequested


WaitAction = FinishCall | Cancel | WithdrawHandoff


def _settled(events: Sequence[Event]) -> set[str]:
    return {e.call_id for e in events if isinstance(e, ToolResult | ToolError) and e.call_id}


def next_wait(events: Sequence[Event]) -> WaitAction | None:
    """The first cancel or call result not yet answered, if any."""
    asked: CancelRequested | None = None
    for e in events:
        if isinstance(e, CancelRequested):
            asked = e
        elif isinstance(e, Cancelled):
            asked = None
    if asked is not None:
        return Cancel(asked)
    started = {e.call_id: e for e in events if isinstance(e, ToolStarted)}
    settled = _settled(events)
    for e in events:
        if not isinstance(e, CallReported | CallDue):
            continue
        if e.call_id not in settled and e.call_id in started:
            return FinishCall(started[e.call_id], e)
    waited: ToolStarted | None = None
    for e in events:  # a handoff still waiting, and a human message that came after it
        if isinstance(e, ToolStarted) and e.withdraw_on_message and e.call_id not in settled:
            waited = e
        elif isinstance(e, UserMessage) and waited is not None:
            return WithdrawHandoff(waited)
    return None


def waiting_on(events: Sequence[Event]) -> list[ToolStarted]:
    """Started calls whose result has not come yet."""
    settled = _settled(events)
    return [e for e in events if isinstance(e, ToolStarted) and e.call_id not in settled]
