"""One trace per thread across a pause, with the SDK's in-memory exporter.

message -> approval pause -> (wait) -> approve -> done: every span of both runs, of the
deliveries and of the decision shares the trace the thread's first message started.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from model.events import AgentStep
from store import keys
from telemetry import tracing
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.otlp_collector import FakeCollector, ReceivedSpan
from tests.process import ask_and_approve, model_env, poll, service_process


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(tracing.ConversationIds())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.install(None)
    provider.shutdown()


def _attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def _named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_one_trace_across_the_approval_pause(
    spans: InMemorySpanExporter, service: Service
) -> None:
    r = await service.api.post("/v1/threads", json={"message": "deploy v1.2.3 to production"})
    tid = r.json()["thread_id"]
    view = await service.settled(tid, "awaiting_human")
    rid = view.requests[0].request.request_id
    assert len(_named(spans.get_finished_spans(), "invoke_agent")) >= 1  # the first run ended

    r = await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    assert r.status_code == 200
    view = await service.settled(tid, "done")
    finished = spans.get_finished_spans()

    assert {s.context.trace_id for s in finished} == {finished[0].context.trace_id}
    assert [s for s in finished if s.status.status_code is StatusCode.ERROR] == []
    assert all(s.attributes and s.attributes["gen_ai.conversation.id"] == tid for s in finished)

    (root,) = _named(finished, "create_thread")
    runs = _named(finished, "invoke_agent deploybot")
    assert len(runs) >= 2  # before the pause and after the approval
    assert all(s.parent and s.parent.span_id == root.context.span_id for s in runs)
    assert {s.attributes["switchboard.run.outcome"] for s in runs if s.attributes} >= {
        "awaiting_human",
        "done",
    }
    for run in runs:
        assert _attrs(run)["gen_ai.operation.name"] == "invoke_agent"
        assert _attrs(run)["gen_ai.agent.name"] == "deploybot"

    chats = _named(finished, "chat ")
    assert len(chats) == 2  # deploy, then done_for_now after the tool ran
    for chat in chats:
        attributes = chat.attributes or {}
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.request.model"] == "fake-model"
        assert attributes["gen_ai.usage.input_tokens"] == 1
        assert attributes["gen_ai.usage.output_tokens"] == 1
        assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
        assert chat.parent is not None
        assert chat.parent.span_id in {s.context.span_id for s in runs}

    (tool,) = _named(finished, "execute_tool")
    call_id = next(e.call_id for e in view.events if isinstance(e, AgentStep) and e.call_id)
    assert _attrs(tool)["gen_ai.tool.name"] == "deploy"
    assert _attrs(tool)["gen_ai.tool.call.id"] == call_id
    assert view.state.status == "done"

    (decision,) = _named(finished, "decide_request")
    assert _attrs(decision)["switchboard.request_id"] == rid
    assert _attrs(decision)["switchboard.approval.outcome"] == "approve"
    deliveries = _named(finished, "deliver rest")
    assert {d.attributes["switchboard.outbox.kind"] for d in deliveries if d.attributes} == {
        "approval",
        "final",
    }


async def test_a_later_message_joins_the_thread_trace(
    spans: InMemorySpanExporter, service: Service
) -> None:
    r = await service.api.post("/v1/threads", json={"message": "hello"})
    tid = r.json()["thread_id"]
    view = await service.settled(tid, "awaiting_human")
    assert view.meta.trace is not None  # the API shows the thread's trace context
    await service.api.post(f"/v1/threads/{tid}/messages", json={"message": "still there?"})
    await service.wait(tid, lambda v: len([e for e in v.events if e.type == "agent_step"]) == 2)
    await service.settled(tid, "awaiting_human")
    finished = spans.get_finished_spans()
    (root,) = _named(finished, "create_thread")
    (inbound,) = _named(finished, "inbound_message")
    assert inbound.parent is not None
    assert inbound.parent.span_id == root.context.span_id
    assert view.meta.trace.split("-")[1] == f"{root.context.trace_id:032x}"
    assert {s.context.trace_id for s in finished} == {root.context.trace_id}
    assert len(_named(finished, "invoke_agent")) >= 2


async def test_tracing_off_stores_no_trace_context(service: Service) -> None:
    r = await service.api.post("/v1/threads", json={"message": "hello"})
    tid = r.json()["thread_id"]
    await service.settled(tid, "awaiting_human")
    assert not tracing.enabled()
    assert await service.store.redis.hget(keys.meta(tid), keys.META_TRACE) is None


def test_a_real_process_exports_the_thread_trace_over_otlp(
    tmp_path: Path, fake_llm: FakeOpenAI
) -> None:
    collector = FakeCollector()
    collector.server.start()
    env = {
        **model_env(fake_llm.base_url),
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms between exports (default 5 s)
    }
    try:
        with service_process(tmp_path, env) as service:
            tid, _ = ask_and_approve(service.base)

            def finished() -> list[ReceivedSpan]:
                spans = collector.spans()
                done = [s for s in spans if s.attributes.get("switchboard.run.outcome") == "done"]
                finals = [
                    s for s in spans if s.attributes.get("switchboard.outbox.kind") == "final"
                ]
                return spans if done and finals else []

            spans = poll(finished)
            assert "tracing on: OTLP to" in service.log()
    finally:
        collector.server.stop()

    ours = [s for s in spans if s.attributes.get("gen_ai.conversation.id") == tid]
    names = {s.name for s in ours}
    own = {"create_thread", "invoke_agent deploybot", "chat fake-model", "execute_tool deploy"}
    own |= {"decide_request", "deliver rest"}
    assert own <= names
    (trace_id,) = {s.trace_id for s in ours if s.name in own}
    assert {s.service for s in ours} == {"switchboard"}
    assert [s.name for s in ours if s.error and s.name in own] == []
    # FastAPI's span of the request that created the thread is the root of its trace.
    (root,) = [s for s in ours if s.name == "create_thread"]
    (created,) = [s for s in spans if s.span_id == root.parent_span_id]
    assert created.trace_id == trace_id
    assert created.name.startswith("POST /v1/threads")
    # The runs' Redis commands nest under them; the workers' polling makes no traces.
    runs = {s.span_id for s in ours if s.name == "invoke_agent deploybot"}
    assert any(s.name == "EVALSHA" and s.trace_id == trace_id for s in spans)
    assert {s.trace_id for s in spans if s.parent_span_id in runs} == {trace_id}
    assert not [s for s in spans if s.name == "XREADGROUP" and not s.parent_span_id]
    # Polling GETs make no traces; a request is one span, not three.
    assert not [s for s in spans if s.name.startswith("GET ")]
    assert not [s for s in spans if s.name.endswith(("http send", "http receive"))]
