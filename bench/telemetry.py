"""What observability costs: CPU per approval round trip with it off, JSON logs, and traces.

One process, one thread at a time, through ``Worker.handle`` (so the run's log context and
its ``invoke_agent`` span are in): message -> run -> pause, approve -> run -> done. The
outbox is left out (its cost is the channel's). Three setups take turns round after round,
so load from elsewhere on the machine falls on all alike:

- off: no log handler at INFO (the service's lines are dropped at the logger), no tracer;
- logs: the service's JSON lines, written to /dev/null;
- logs + our spans: also the OpenTelemetry SDK with a batch processor and an exporter that
  drops what it gets (runs, model calls, tools, inbound, decisions);
- logs + our spans + redis spans: and the redis instrumentation, as the service installs it
  when tracing is on (a span per command inside a run).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agent.worker import Worker, WorkerSettings
from bench.targets import RedisTarget, reset
from bench.workload import AGENT, MESSAGE, ScriptedLLM, registry
from model.events import UserMessage, decided
from model.ids import new_id
from model.records import Origin
from store import keys
from store.streams import Entry
from store.threads import NewThread, ThreadStore
from telemetry import logs, tracing

ORIGIN = Origin(channel="rest", address="bench")


class _Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _off() -> Callable[[], None]:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    for handler in saved[0]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)

    def undo() -> None:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])

    return undo


def _logs() -> Callable[[], None]:
    undo = _off()
    logs.setup("json", "INFO")
    handler = logging.getLogger().handlers[0]
    sink = open("/dev/null", "w")  # noqa: SIM115 - closed by undo
    handler.setStream(sink)  # type: ignore[attr-defined]

    def undo_logs() -> None:
        sink.close()
        undo()

    return undo_logs


def _traces(redis_spans: bool) -> Callable[[], None]:
    undo = _logs()
    provider = TracerProvider()
    provider.add_span_processor(tracing.ConversationIds())
    provider.add_span_processor(BatchSpanProcessor(_Dropped()))
    tracing.install(provider)
    if redis_spans:
        RedisInstrumentor().instrument(tracer_provider=provider)

    def undo_traces() -> None:
        if redis_spans:
            RedisInstrumentor().uninstrument()
        tracing.install(None)
        provider.shutdown()
        undo()

    return undo_traces


SETUPS: dict[str, Callable[[], Callable[[], None]]] = {
    "off": _off,
    "logs": _logs,
    "logs + our spans": lambda: _traces(redis_spans=False),
    "logs + our spans + redis spans": lambda: _traces(redis_spans=True),
}


async def _round_trip(store: ThreadStore, worker: Worker) -> float:
    """CPU seconds of one thread, message to done (the approval included)."""
    tid = new_id("th")
    c0 = time.process_time()
    await store.append_inbound(
        tid,
        UserMessage(channel="rest", sender="bench", text=MESSAGE),
        create=NewThread(agent=AGENT, origin=ORIGIN),
    )
    await worker.handle(Entry(entry_id="0-1", fields={"t": tid}, key=keys.RUNS))
    pending = await store.pending_requests(1)
    rid = pending[0].request.request_id
    await store.answer(rid, decided("approve", request_id=rid, channel="rest", responder="bench"))
    await worker.handle(Entry(entry_id="0-2", fields={"t": tid}, key=keys.RUNS))
    return time.process_time() - c0


async def run_telemetry(target: RedisTarget, n: int = 40, rounds: int = 15) -> dict[str, Any]:
    reset(target.url)
    client = aioredis.from_url(target.url)
    store = ThreadStore(client)
    await store.setup()
    worker = Worker(store, registry(), ScriptedLLM(), name="bench", settings=WorkerSettings())
    cpu: dict[str, list[float]] = {name: [] for name in SETUPS}
    try:
        for _ in range(5):  # warm-up: imports, scripts, caches
            await _round_trip(store, worker)
        for _ in range(rounds):
            for name, setup in SETUPS.items():
                undo = setup()
                try:
                    for _ in range(n):
                        cpu[name].append(await _round_trip(store, worker))
                finally:
                    undo()
                await client.flushdb()
    finally:
        await client.aclose()
    off = statistics.median(cpu["off"])
    rows = []
    for name, values in cpu.items():
        p50 = statistics.median(values)
        rows.append(
            {
                "setup": name,
                "cpu_p50_ms": round(p50 * 1000, 3),
                "cpu_mean_ms": round(statistics.fmean(values) * 1000, 3),
                "vs_off_ms": round((p50 - off) * 1000, 3),
                "round_trips": len(values),
            }
        )
    return {"store": target.name, "rows": rows}
