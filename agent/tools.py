"""Tools are structured outputs: the model names one and fills its arguments; code validates
the arguments with the tool's pydantic model and decides whether, and when, it runs."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.errors import ToolFailed
from agent.handoff import Handoff
from agent.longrun import Started
from agent.policy import ApprovalConfig
from telemetry import logs, metrics, tracing

log = logging.getLogger("switchboard.tools")

ToolFunction = Callable[[Any], Awaitable[str | Started]]
"""A tool's action: its result, or ``Started`` for a long-running one (agent.longrun)."""


@dataclass(frozen=True)
class Address:
    """Somebody reachable on a channel: ``slack:U0123``, ``sms:+15551234567``, ``rest:*``."""

    channel: str
    address: str

    @classmethod
    def parse(cls, text: str) -> Address:
        channel, sep, address = text.partition(":")
        if not sep or not channel or not address:
            raise ValueError(f"expected 'channel:address', got {text!r}")
        return cls(channel=channel.strip().lower(), address=address.strip())

    def __str__(self) -> str:
        return f"{self.channel}:{self.address}"


@dataclass(frozen=True)
class Tool:
    """One thing the agent can do.

    ``needs_approval`` tools never run on the model's say-so: the step becomes an approval
    request, and the tool runs only after an authorized human approves. ``side_effects``
    tools are recorded in the ledger before they run, so a crash never repeats them silently.
    """

    name: str
    description: str
    args: type[BaseModel]
    run: ToolFunction
    needs_approval: bool = False
    side_effects: bool = True
    approvers: tuple[Address, ...] = ()
    """Who may decide an approval. Empty: anyone who can reach the thread's channel."""
    notify: tuple[Address, ...] = ()
    """Where approval requests go. Empty: the channel the thread came from."""
    approval: ApprovalConfig | None = None
    """Route stages, reminders, deadline and the rest of the approval policy."""
    long_running: bool = False
    """May answer ``Started``: the thread waits for the result (agent.longrun)."""
    timeout: float | None = None
    """For a long-running tool: seconds its result may take after it started."""
    handoff: Handoff | None = None
    """Set: the call starts a thread on another agent instead of running (agent.handoff)."""
    approval_note: str = ""
    """Shown to the approver under the call (what an MCP server says about its tool)."""

    async def call(self, args: BaseModel, call_id: str) -> str | Started:
        """Run the tool: one ``execute_tool`` span, a log line, its duration and outcome."""
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": self.name,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "function",
        }
        started = time.perf_counter()
        outcome = "error"
        with (
            logs.bound(call_id=call_id),
            tracing.span(f"execute_tool {self.name}", attributes=attributes),
        ):
            try:
                output = await self.run(args)
                outcome = "ok"
                return output
            finally:
                elapsed = time.perf_counter() - started
                metrics.child(metrics.TOOL_RUNS, self.name, outcome).inc()
                metrics.child(metrics.TOOL_RUN_SECONDS, self.name).observe(elapsed)
                log.info(
                    "tool %s ran in %.0f ms: %s",
                    self.name,
                    elapsed * 1000,
                    outcome,
                    extra={
                        "tool": self.name,
                        "outcome": outcome,
                        "duration_ms": round(elapsed * 1000),
                    },
                )

    def validate(self, arguments: Mapping[str, Any]) -> BaseModel:
        try:
            return self.args.model_validate(dict(arguments))
        except ValidationError as exc:
            raise ToolFailed(self.name, compact_validation_error(exc)) from None


@dataclass(frozen=True, eq=False)
class Agent:
    """A small, focused agent: its tools, its prompt, and how far one run may go."""

    name: str
    tools: Mapping[str, Tool]
    prompt: str
    """Prompt template as ``folder/version``, e.g. ``deploybot/v1``: the one a run uses
    (``agent.prompts.for_thread`` sets it per thread when there are several)."""
    prompt_weights: Mapping[str, int] = field(default_factory=dict)
    """Versions under A/B test and their weights; empty: ``prompt`` alone."""
    max_steps: int = 10
    context_tokens: int = 16_000
    """The context's budget in tokens (system prompt, thread, tool schemas): older settled
    turns are summarized past it. 16,000 leaves room to answer in a 32k-token window."""
    request_timeout: float | None = None
    """Seconds a question or approval may wait before it expires (None: forever)."""
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    people: Mapping[str, str] = field(default_factory=dict)
    on_new_message: str = "withdraw"
    """``withdraw``: a human message withdraws a pending approval; ``keep``: it stands."""
    summarize: str = "code"
    """Who writes compacted turns' summary lines: ``code`` (agent.compaction) or ``model``
    (agent.summaries: one model call per turn, stored as a ``Summarized`` event)."""
    """``channel:address`` -> person (``[people.<name>]``): who is who across channels."""


def compact_validation_error(exc: ValidationError) -> str:
    """One line per problem, no URLs or input echoes: this text goes into the model's context."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
