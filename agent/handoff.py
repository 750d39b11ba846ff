"""Handoff: a tool call that starts a thread on another agent, and waits for its answer.

A tool declared with ``agent = "rollbackbot"`` and ``message = "Roll back {{ env }}"`` does
not run anything itself. The run loop renders the message over the call's arguments
(Jinja2, sandboxed: the model writes the arguments), starts a child thread on that agent,
with the parent's origin (so the child's questions and approvals reach the same people,
unless the child's own tools route them elsewhere), and the parent waits. The child's final
answer goes back through the outbox to the ``agent`` channel, whose sender (``ToParent``)
reports it as the parent's call result, once (store.calls).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from model.events import CallReported, Event, ToolStarted
from model.records import Delivery, Origin, OutboxItem, ParentLink
from store.calls import CallNotFound, Calls

CHANNEL = "agent"
"""The outbox channel of a child's final answer: its address is the parent thread."""
ROUTE_CALL = "call_id"
DEFAULT_DEPTH = 3

_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class Handoff:
    """Where a handoff tool's calls go, and what the child is told."""

    agent: str
    message: str
    """A Jinja2 template over the call's arguments."""
    max_depth: int = DEFAULT_DEPTH
    """Handoffs in a chain from the root thread; a call that would go deeper is a tool error."""

    def __post_init__(self) -> None:
        try:  # a syntax error fails at start, not at the first call
            _ENV.from_string(self.message)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"message template: {exc}") from None

    def render(self, arguments: Mapping[str, Any]) -> str:
        """The child's first message. Raises ValueError on an unknown name or a sandbox breach."""
        try:
            return _ENV.from_string(self.message).render(**arguments).strip()
        except jinja2.TemplateError as exc:
            raise ValueError(f"message template: {exc}") from None


def to_parent(link: ParentLink) -> Origin:
    """Where a child's final answer goes: the parent thread, for the call that started it."""
    return Origin(channel=CHANNEL, address=link.thread_id, route={ROUTE_CALL: link.call_id})


@dataclass(frozen=True)
class Child:
    """A thread this one handed work to, as the thread API lists it."""

    thread_id: str
    agent: str
    call_id: str


def children(events: Sequence[Event]) -> list[Child]:
    return [
        Child(thread_id=e.external_id, agent=e.agent, call_id=e.call_id)
        for e in events
        if isinstance(e, ToolStarted) and e.agent
    ]


class ToParent:
    """The ``agent`` channel's sender: a child's final answer becomes its parent's result."""

    channel = CHANNEL
    resend_when_unknown = True  # the report is taken once: a repeat is a duplicate

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def send(self, item: OutboxItem) -> Delivery:
        call_id = item.to.route.get(ROUTE_CALL, "")
        # The child's final answer is the result; anything else it sends here (its cancel) fails
        # the call.
        outcome = "result" if item.kind == "final" else "error"
        event = CallReported(
            call_id=call_id, outcome=outcome, text=item.text, by=f"thread:{item.thread_id}"
        )
        try:
            report = await self.calls.report(event)
        except CallNotFound:
            # The parent has no such call (a record lost with its Redis): nothing to wake.
            return Delivery(provider_id=item.outbox_id, detail={"outcome": "no such call"})
        return Delivery(provider_id=item.outbox_id, detail={"outcome": report.outcome})
