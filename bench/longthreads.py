"""Long threads, and the framework's own cost per agent step.

Long threads are repeated approval round trips (message, step, approval request, approval,
result, step, final answer: 7 events, with their request record and two outbox items),
written under a lease as a worker would. For each length: stored bytes, context render time,
resume time (acquire = load the snapshot and the tail after it, plan, render, release with
the next snapshot, as a run does), which must not grow with the length, and the rendered
context's tokens against the agent's budget.

Overhead per step: one thread at a time, nothing else running, the scripted model answering
at once: the time of a whole run (acquire, render, decide, parse, dispatch, fenced commit,
publish, ack) per decision.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from agent import snapshot
from agent.context import render
from agent.reducer import plan
from agent.resume import Resume
from agent.runner import Run, RunSettings
from agent.tools import Agent
from bench.targets import RedisTarget, reset
from bench.workload import AGENT, MESSAGE, PROMPT, ScriptedLLM, percentile, registry
from model.events import (
    AgentStep,
    ApprovalRequest,
    Approved,
    Event,
    FinalAnswer,
    ToolResult,
    UserMessage,
)
from model.ids import new_id
from model.records import Origin, OutboxItem, RequestRecord
from store import keys
from store.snapshot import Stored
from store.threads import NewThread, ThreadStore

ORIGIN = Origin(channel="rest", address="bench")


def cycle(tid: str) -> tuple[list[Event], RequestRecord, list[OutboxItem]]:
    """One approval round trip's events and records."""
    call, rid = new_id("call"), new_id("rq")
    args = {"tag": "v1.2.3", "env": "production"}
    text = "Approval needed: deploy(tag='v1.2.3', env='production')"
    events: list[Event] = [
        UserMessage(channel="rest", sender="bench", text=MESSAGE),
        AgentStep(intent="deploy", arguments=args, prompt=PROMPT, call_id=call),
        ApprovalRequest(request_id=rid, text=text, tool="deploy", arguments=args, call_id=call),
        Approved(
            request_id=rid,
            channel="rest",
            responder="bench",
        ),
        ToolResult(call_id=call, tool="deploy", output="deployed v1.2.3 to production"),
        AgentStep(
            intent="done_for_now",
            arguments={"message": "Deployed v1.2.3 to production."},
            prompt=PROMPT,
        ),
        FinalAnswer(text="Deployed v1.2.3 to production."),
    ]
    record = RequestRecord(
        request_id=rid,
        thread_id=tid,
        kind="approval",
        text=text,
        tool="deploy",
        arguments=args,
        call_id=call,
        approvers=["rest:*"],
    )
    outbox = [
        OutboxItem(
            outbox_id=new_id("out"),
            thread_id=tid,
            kind=kind,
            text=t,
            to=ORIGIN,
            request_id=rid if kind == "approval" else None,
        )
        for kind, t in (("approval", text), ("final", "Deployed v1.2.3 to production."))
    ]
    return events, record, outbox


async def build_thread(store: ThreadStore, length: int) -> str:
    tid = new_id("th")
    first, _, _ = cycle(tid)
    await store.append_inbound(tid, first[0], create=NewThread(agent=AGENT, origin=ORIGIN))
    await store.runs.ensure_group()
    lease = await store.acquire(tid, "bench-builder", 60_000)
    assert lease is not None
    written = 1
    while written < length:
        events, record, outbox = cycle(tid)
        if written == 1:
            events = events[1:]
        events = events[: length - written]
        await store.commit(
            lease,
            ttl_ms=60_000,
            events=events,
            state={"status": "done"},
            requests=[record],
            outbox=outbox,
        )
        written += len(events)
    # Released as a run would: with the snapshot of what it wrote (agent.snapshot).
    log = (await store.thread(tid)).events
    await store.commit(lease, ttl_ms=60_000, release=True, snapshot=_snapshot(log))
    return tid


def _snapshot(log: list[Event]) -> Stored | None:
    agent = registry().get(AGENT)
    assert agent is not None
    snap = snapshot.build(agent, log)
    return snap.stored() if snap else None


async def _stored(client: aioredis.Redis, tid: str) -> int:
    pipe = client.pipeline(transaction=False)
    for key in keys.thread_keys(tid):
        pipe.memory_usage(key, samples=0)
    return sum(v or 0 for v in await pipe.execute())


@dataclass
class _Timings:
    loads: list[float] = field(default_factory=list)
    renders: list[float] = field(default_factory=list)
    resumes: list[float] = field(default_factory=list)


async def _resume_once(store: ThreadStore, agent: Agent, tid: str, into: _Timings) -> Any:
    """One resume as a run does it: snapshot and tail (agent.resume), plan, render, release
    with the next snapshot. Returns the lease and the rendered context."""
    t0 = time.perf_counter()
    lease = await store.acquire(tid, "bench", 60_000)
    t1 = time.perf_counter()
    assert lease is not None
    resume = Resume.of(lease)
    plan(resume.events, lease.ledger, lease.meta.origin.target)
    t2 = time.perf_counter()
    context = render(agent, resume.events[resume.skip :], prior=resume.prior())
    t3 = time.perf_counter()
    after = resume.after(agent, resume.events)
    await store.commit(lease, ttl_ms=60_000, release=True, snapshot=after)
    t4 = time.perf_counter()
    into.loads.append(t1 - t0)
    into.renders.append(t3 - t2)
    into.resumes.append(t4 - t0)
    return lease, context


async def run_long(
    target: RedisTarget, lengths: list[int], repeats: int = 15
) -> list[dict[str, Any]]:
    """Every length's thread is built first, then resumed in turn, round after round: on a
    shared machine, a busy moment then slows every length alike instead of one of them."""
    reset(target.url)
    client = aioredis.from_url(target.url)
    store = ThreadStore(client)
    await store.setup()
    agent = registry().get(AGENT)
    assert agent is not None
    out = []
    try:
        tids = [await build_thread(store, length) for length in lengths]
        sizes = [await _stored(client, tid) for tid in tids]
        timings = [_Timings() for _ in lengths]
        last: list[Any] = [None] * len(lengths)
        for _ in range(repeats):
            for i, tid in enumerate(tids):
                last[i] = await _resume_once(store, agent, tid, timings[i])
        for (lease, context), stored, t in zip(last, sizes, timings, strict=True):
            n_events = lease.base + len(lease.events)
            resume = statistics.median(t.resumes)
            out.append(
                {
                    "events": n_events,
                    "stored_bytes": stored,
                    "bytes_per_event": round(stored / n_events),
                    "render_ms": round(statistics.median(t.renders) * 1000, 3),
                    "load_ms": round(statistics.median(t.loads) * 1000, 3),
                    "resume_ms": round(resume * 1000, 3),
                    "resume_us_per_event": round(resume * 1e6 / n_events, 2),
                    "context_tokens": context.tokens,
                    "budget": agent.context_tokens,
                    "compacted_turns": context.compacted.turns if context.compacted else 0,
                    "counting": context.counting,
                    "tail_events": len(lease.events),
                }
            )
    finally:
        await client.aclose()
    return out


async def run_overhead(target: RedisTarget, n: int = 300) -> dict[str, Any]:
    """One thread at a time, in this process: run time per decision, and its CPU-only part."""
    reset(target.url)
    client = aioredis.from_url(target.url)
    store = ThreadStore(client)
    await store.setup()
    agent = registry().get(AGENT)
    assert agent is not None
    llm = ScriptedLLM()
    settings = RunSettings()
    first: list[float] = []
    second: list[float] = []
    try:
        for i in range(n + 20):
            tid = new_id("th")
            await store.append_inbound(
                tid,
                UserMessage(channel="rest", sender="bench", text=MESSAGE),
                create=NewThread(agent=AGENT, origin=ORIGIN),
            )
            t0 = time.perf_counter()
            lease = await store.acquire(tid, "bench", 30_000)
            assert lease is not None
            await Run(lease, agent, llm, store, settings).go()
            t1 = time.perf_counter()
            view = await store.thread(tid)
            rid = view.requests[0].request.request_id
            await store.answer(
                rid,
                Approved(
                    request_id=rid,
                    channel="rest",
                    responder="bench",
                ),
            )
            t2 = time.perf_counter()
            lease = await store.acquire(tid, "bench", 30_000)
            assert lease is not None
            await Run(lease, agent, llm, store, settings).go()
            t3 = time.perf_counter()
            if i >= 20:  # warm-up excluded
                first.append(t1 - t0)
                second.append(t3 - t2)
        # The CPU-only part of one decision: render the context, parse the answer.
        from agent.reducer import next_step

        events = lease.events
        cpu = []
        for _ in range(n):
            t = time.perf_counter()
            await next_step(agent, events, llm)
            cpu.append(time.perf_counter() - t)
    finally:
        await client.aclose()
    return {
        "run_to_pause_p50_ms": round(percentile(first, 50) * 1000, 3),
        "run_to_pause_p99_ms": round(percentile(first, 99) * 1000, 3),
        "run_to_done_p50_ms": round(percentile(second, 50) * 1000, 3),
        "run_to_done_p99_ms": round(percentile(second, 99) * 1000, 3),
        "decide_cpu_p50_ms": round(percentile(cpu, 50) * 1000, 3),
        "note": "run to pause = 1 decision; run to done = tool (ledger flush) + 1 decision",
    }
