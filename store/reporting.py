"""What the store reports about human input: a log line, a count and a span per message.

Every inbound message and every decision passes through the store, whatever channel it came
by, so this is the one place that sees them all. A message that creates a thread starts the
thread's trace here: its root span's context goes into the thread's meta (``META_TRACE``),
and later messages and decisions start their spans under it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import redis.asyncio as aioredis
from opentelemetry import trace

from model.events import Approved, Event, HumanResponse, Rejected, UserMessage, utcnow
from model.records import Origin, RequestRecord
from store import keys
from telemetry import logs, metrics, tracing

log = logging.getLogger("switchboard.inbound")


async def thread_trace(client: aioredis.Redis, thread_id: str) -> str | None:
    """The thread's root ``traceparent``; None (and no round trip) with tracing off."""
    if not tracing.enabled():
        return None
    raw = await client.hget(keys.meta(thread_id), keys.META_TRACE)
    return raw.decode() if isinstance(raw, bytes) else raw


class Creation(Protocol):
    """What a message that creates a thread brings (the store's ``NewThread``)."""

    @property
    def agent(self) -> str: ...
    @property
    def origin(self) -> Origin: ...


@dataclass
class InboundReport:
    """One inbound append, from before its write to its outcome."""

    thread_id: str
    event: Event
    create: Creation | None
    traceparent: str | None = None
    """For a new thread: the root span's traceparent, to store with it."""
    _span: trace.Span = field(default=trace.INVALID_SPAN)

    def done(self, stored: int) -> None:
        """``stored``: 2 stored on a thread this append created, 1 stored, 0 a duplicate,
        -1 no such thread, -2 not stored for now: the thread has asked (the channel looks for
        the question, then answers or appends again, reported then). A channel passes
        ``create`` with every message that may start a thread (a DM, an email); only the
        append that did start one reports a new thread."""
        if stored == -2:
            self._span.set_attribute("switchboard.inbound.outcome", "question_asked")
            self._span.end()
            return
        channel = getattr(self.event, "channel", "") or "unknown"
        outcome = {2: "accepted", 1: "accepted", 0: "duplicate"}.get(stored, "unknown_thread")
        self._span.set_attribute("switchboard.inbound.outcome", outcome)
        self._span.end()
        with logs.bound(thread_id=self.thread_id, channel=channel):
            if stored == -1:  # refused: the channel's edge counts it (a 404, a 550...)
                log.info("message refused: no such thread")
                return
            metrics.INBOUND.labels(channel, outcome).inc()
            if stored == 0:
                log.debug("duplicate delivery ignored")
            elif stored == 2 and self.create is not None:
                origin = self.create.origin
                metrics.THREADS_STARTED.labels(self.create.agent, origin.channel).inc()
                log.info(
                    "thread created for %s from %s:%s",
                    self.create.agent,
                    origin.channel,
                    origin.address,
                    extra={"agent": self.create.agent, "origin": str(origin.address)},
                )
            else:
                log.info("%s stored", self.event.type)


async def inbound(
    client: aioredis.Redis,
    thread_id: str,
    event: Event,
    create: Creation | None = None,
) -> InboundReport:
    """Start reporting an inbound append; call ``done`` with the script's answer."""
    report = InboundReport(thread_id, event, create)
    if not tracing.enabled():
        return report
    channel = getattr(event, "channel", "")
    attributes = {"switchboard.channel": channel, tracing.CONVERSATION_ID: thread_id}
    if create is not None:
        # The thread's root: a child of whatever request carries it (a webhook's HTTP span).
        report._span = tracing.start("create_thread", attributes=attributes)
        report.traceparent = tracing.traceparent_of(report._span)
    else:
        parent = await thread_trace(client, thread_id)
        name = "inbound_message" if isinstance(event, UserMessage) else f"inbound_{event.type}"
        report._span = tracing.start(name, parent=parent, attributes=attributes)
    return report


async def decided(client: aioredis.Redis, record: RequestRecord, response: HumanResponse) -> None:
    """A human answered a request: how long it waited, who decided, on which channel."""
    decision = response.verdict if isinstance(response, Approved | Rejected) else "answer"
    waited = max(0.0, (utcnow() - record.created).total_seconds())
    metrics.DECISION_SECONDS.labels(record.kind, decision).observe(waited)
    with logs.bound(
        thread_id=record.thread_id,
        request_id=record.request_id,
        call_id=record.call_id,
        channel=response.channel,
    ):
        log.info(
            "%s %s by %s:%s after %.1f s",
            record.kind,
            "answered" if decision == "answer" else f"decided: {decision}",
            response.channel,
            response.responder,
            waited,
            extra={"responder": response.responder, "decision": decision, "waited_s": waited},
        )
        if tracing.enabled():
            parent = await thread_trace(client, record.thread_id)
            attributes = {
                tracing.CONVERSATION_ID: record.thread_id,
                "switchboard.request_id": record.request_id,
                "switchboard.approval.outcome": decision,
                "switchboard.channel": response.channel,
            }
            tracing.start("decide_request", parent=parent, attributes=attributes).end()
