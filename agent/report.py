"""What a run reports as it goes: one log line and a count per step, request and escalation.

The run loop hands every event it appends to ``RunReport.appended``; the report reads the
event and says what happened in operators' terms. The thread id, agent and worker come from
the log context the worker binds around the run, so no line here has to repeat them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from agent.tools import Agent
from model.events import (
    AgentStep,
    ApprovalRequest,
    Event,
    FinalAnswer,
    HumanRequest,
    Offered,
    SystemNote,
    ToolResult,
)
from telemetry import metrics

log = logging.getLogger("switchboard.run")


class RunReport:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent.name

    def appended(self, events: Iterable[Event]) -> None:
        for event in events:
            self._one(event)

    def _one(self, event: Event) -> None:
        if isinstance(event, AgentStep):
            metrics.child(metrics.STEPS, self.agent, event.intent, event.prompt).inc()
            log.info(
                "step decided: %s (prompt %s, %s ms, tokens in/out %s/%s)",
                event.intent,
                event.prompt,
                event.latency_ms,
                event.input_tokens,
                event.output_tokens,
                extra={
                    "call_id": event.call_id,
                    "intent": event.intent,
                    "prompt": event.prompt,
                    "latency_ms": event.latency_ms,
                    "input_tokens": event.input_tokens,
                    "output_tokens": event.output_tokens,
                },
            )
        elif isinstance(event, HumanRequest):
            kind = "approval" if isinstance(event, ApprovalRequest) else "question"
            call_id = event.call_id if isinstance(event, ApprovalRequest) else None
            metrics.child(metrics.REQUESTS, self.agent, kind).inc()
            log.info(
                "%s requested: %s",
                kind,
                event.text[:200],
                extra={"request_id": event.request_id, "call_id": call_id},
            )
        elif isinstance(event, Offered) and event.to:
            if event.kind == "remind":
                metrics.REMINDERS.labels(self.agent).inc()
            else:  # a later stage of the route: escalated to the next people
                metrics.ESCALATIONS.labels(self.agent).inc()
            log.info("%s of %s: asked %s", event.kind, event.request_id, ", ".join(event.to))
        elif isinstance(event, ToolResult) and event.outcome != "ok":
            if event.outcome == "withdrawn":
                metrics.WITHDRAWALS.labels(self.agent).inc()
            log.info(
                "tool %s not run: %s",
                event.tool,
                event.outcome,
                extra={"call_id": event.call_id, "outcome": event.outcome},
            )
        elif isinstance(event, SystemNote) and event.kind in ("escalation", "step_limit"):
            if event.kind == "escalation":
                metrics.ESCALATIONS.labels(self.agent).inc()
            log.warning("%s: %s", event.kind, event.text[:300])
        elif isinstance(event, FinalAnswer):
            log.info("final answer: %s", event.text[:200])
