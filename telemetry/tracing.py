"""OpenTelemetry traces: off (no provider, nothing recorded) unless an OTLP endpoint is set.

One trace per thread, across pauses: when a message creates a thread, its root span's
context (a W3C ``traceparent``) is stored with the thread, and every later run, inbound
message and delivery of that thread starts its span as a child of that root. A pause is the
ordinary end of a run's span; nothing is held open while a human thinks.

Spans follow the GenAI semantic conventions (``invoke_agent``, ``chat``, ``execute_tool``,
``gen_ai.*`` attributes); every span started while a thread id is bound to the log context
carries it as ``gen_ai.conversation.id`` (``ConversationIds``), the contrib instrumentations'
HTTP and Redis spans included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes, AttributeValue

from telemetry import logs

CONVERSATION_ID = "gen_ai.conversation.id"

_PROPAGATOR = TraceContextTextMapPropagator()
_OFF: AbstractContextManager[trace.Span] = nullcontext(trace.INVALID_SPAN)
_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None


class ConversationIds(SpanProcessor):
    """Stamps the bound thread id on every span as it starts."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        thread_id = logs.current().get("thread_id")
        if thread_id:
            span.set_attribute(CONVERSATION_ID, thread_id)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class QuietRoots(Sampler):
    """Record every operation, but not the traces that would only be noise.

    Not recorded when it would start a trace of its own: a client call (with Redis
    instrumented, a worker's polling would make a one-span trace per XREADGROUP, every
    second) and a GET or HEAD request (the console polls). Calls made inside one of our
    spans (a run, a webhook, a delivery) have a parent and are kept by ``ParentBased``.
    """

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        method = (attributes or {}).get("http.request.method") or (attributes or {}).get(
            "http.method"
        )
        quiet = kind is trace.SpanKind.CLIENT or (
            kind is trace.SpanKind.SERVER and method in ("GET", "HEAD")
        )
        if quiet:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "QuietRoots"


def install(provider: TracerProvider | None) -> None:
    """Trace through ``provider`` from now on (None: tracing off)."""
    global _tracer, _provider
    _tracer = provider.get_tracer("switchboard") if provider is not None else None
    _provider = provider


def enabled() -> bool:
    return _tracer is not None


def provider() -> TracerProvider | None:
    """The installed provider (for the contrib instrumentations), None with tracing off."""
    return _provider


def from_environment() -> TracerProvider | None:
    """A provider exporting over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

    The standard ``OTEL_*`` variables apply (service name, resource attributes, headers,
    the traces-only endpoint, batching); ``OTEL_SDK_DISABLED=true`` keeps tracing off. Every
    thread is sampled: the sampler is ours (``QuietRoots``), not ``OTEL_TRACES_SAMPLER``.
    """
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if not endpoint or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    # Imported here: a service with tracing off never loads the exporter and protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "switchboard"}
    provider = TracerProvider(
        resource=Resource.create(named), sampler=ParentBased(root=QuietRoots())
    )
    provider.add_span_processor(ConversationIds())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _parent(parent: str | None) -> tuple[Context | None, list[trace.Link]]:
    """Start under a stored root, linking the current span (an HTTP request), if any."""
    if not parent:
        return None, []
    here = trace.get_current_span().get_span_context()
    return _PROPAGATOR.extract({"traceparent": parent}), [trace.Link(here)] if here.is_valid else []


def span(
    name: str,
    *,
    parent: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
) -> AbstractContextManager[trace.Span]:
    """A span made current inside the ``with``; with tracing off, a shared no-op.

    ``parent``: a stored ``traceparent`` (the thread's root) to start under instead of the
    current span; the current span, if any, is then linked to it.
    """
    if _tracer is None:
        return _OFF
    context, links = _parent(parent)
    return _tracer.start_as_current_span(
        name, context=context, kind=kind, attributes=attributes, links=links
    )


def start(
    name: str,
    *,
    parent: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> trace.Span:
    """A span that is not made current: the caller ends it (``INVALID_SPAN`` with tracing off)."""
    if _tracer is None:
        return trace.INVALID_SPAN
    context, links = _parent(parent)
    return _tracer.start_span(name, context=context, attributes=attributes, links=links)


def traceparent_of(span: trace.Span) -> str | None:
    """A span's context as a ``traceparent`` value, to store (None for a no-op span)."""
    if not span.get_span_context().is_valid:
        return None
    carrier: dict[str, Any] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    value = carrier.get("traceparent")
    return str(value) if value else None
