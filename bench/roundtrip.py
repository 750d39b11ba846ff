"""Switchboard's approval round trip: the driver here, workers in separate processes.

The driver does what the API does (``ThreadStore.append_inbound``, ``ThreadStore.answer``);
workers (``bench.worker_proc``) run the threads and deliver the outbox through the REST
sender, reporting each delivery by datagram. Phase 1 ends for a thread when its approval
request is delivered, phase 2 when its final message is. The load is a closed loop of
``inflight`` threads in progress at a time, as LangGraph's side runs ``inflight`` concurrent
invocations: so the latencies compare (a flood of N messages would measure the queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis

from bench.targets import RedisTarget, reset_target
from bench.workload import AGENT, MESSAGE, RoundTrips, command_delta, summary
from model.events import Approved, UserMessage
from model.ids import new_id
from model.records import Origin
from store import connection, keys, partitions
from store.threads import NewThread, ThreadStore

ORIGIN = Origin(channel="rest", address="bench")


class ServerStats:
    """INFO commandstats and CPU of the target's server, or of each master of a cluster.

    Read with redis-py's synchronous client, which RoundTrips does not count, so the
    driver's round trips stay its own.
    """

    def __init__(self, target: RedisTarget) -> None:
        self.urls = list(target.nodes) or [target.url]

    def read(self) -> list[tuple[dict[str, Any], float]]:
        out = []
        for url in self.urls:
            client = redis.Redis.from_url(url)
            try:
                commands: Any = client.info("commandstats")
                cpu: Any = client.info("cpu")
            finally:
                client.close()
            out.append((commands, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])))
        return out


def per_shard(
    stats: ServerStats,
    before: list[tuple[dict[str, Any], float]],
    after: list[tuple[dict[str, Any], float]],
    n: int,
) -> list[dict[str, Any]]:
    """Each server's share of the work: commands and server CPU per thread."""
    return [
        {
            "node": url.removeprefix("redis://").removesuffix("/0"),
            "redis_commands_per_thread": round(sum(command_delta(b[0], a[0]).values()) / n, 1),
            "server_cpu_ms_per_thread": round((a[1] - b[1]) * 1000 / n, 3),
        }
        for url, b, a in zip(stats.urls, before, after, strict=True)
    ]


@dataclass
class Deliveries(asyncio.DatagramProtocol):
    """Collects the workers' delivery reports."""

    ready: int = 0
    trips: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    approvals: dict[str, tuple[str, float]] = field(default_factory=dict)
    finals: dict[str, float] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: dict[tuple[str, str], asyncio.Future[None]] = field(default_factory=dict)

    def wait_for(self, kind: str, tid: str) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self.waiters[(kind, tid)] = future
        return future

    def datagram_received(self, data: bytes, addr: Any) -> None:
        kind, tid, rid, at = data.decode().split(" ")
        if kind == "ready":
            self.ready += 1
            self.cpu.append(-float(rid))  # CPU spent starting up is not the workload's
        elif kind == "trips":
            self.trips.append(int(float(at)))
            self.cpu.append(float(rid))
        elif kind == "approval":
            self.approvals[tid] = (rid, float(at))
        elif kind == "final":
            self.finals[tid] = float(at)
        waiter = self.waiters.pop((kind, tid), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.changed.set()

    async def until(self, check: Any, within: float) -> None:
        deadline = time.monotonic() + within
        while not check():
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the workers did not finish in time")
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except TimeoutError:
                continue


def _spawn(url: str, port: int, concurrency: int, profile: str | None) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bench.worker_proc", url, str(port), str(concurrency)]
    if profile:
        argv += ["--profile", profile]
    return subprocess.Popen(argv, env={**os.environ, "PYTHONHASHSEED": "0"})


async def _bounded(limit: int, jobs: list[Any]) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(job: Any) -> None:
        async with sem:
            await job()

    await asyncio.gather(*(one(j) for j in jobs))


async def run_roundtrip(
    target: RedisTarget,
    n: int,
    workers: int,
    *,
    concurrency: int = 32,
    inflight: int = 64,
    profile: str | None = None,
) -> dict[str, Any]:
    """Run ``n`` threads through both phases; the figures as a dict."""
    reset_target(target)
    # The client main.py gives the API, whose calls the driver makes.
    client = connection.connect(target.url, retrying=True)
    store = ThreadStore(client)
    servers = ServerStats(target)
    await store.setup()
    loop = asyncio.get_running_loop()
    transport, reports = await loop.create_datagram_endpoint(
        Deliveries, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    procs = [
        _spawn(target.url, port, concurrency, f"{profile}.{i}" if profile else None)
        for i in range(workers)
    ]
    try:
        await reports.until(lambda: reports.ready >= workers, 60)
        await asyncio.sleep(0.3)  # let every consumer join the groups
        stats0 = servers.read()
        driver0 = RoundTrips.count

        # ---- phase 1: message -> paused (approval request delivered) -----------------
        tids = [new_id("th") for _ in range(n)]
        sent: dict[str, float] = {}

        def append(tid: str) -> Any:
            async def go() -> None:
                paused = reports.wait_for("approval", tid)
                sent[tid] = time.monotonic()
                await store.append_inbound(
                    tid,
                    UserMessage(channel="rest", sender="bench", text=MESSAGE),
                    create=NewThread(agent=AGENT, origin=ORIGIN),
                )
                await asyncio.wait_for(paused, 120)

            return go

        t0 = time.monotonic()
        await _bounded(inflight, [append(t) for t in tids])
        await reports.until(lambda: len(reports.approvals) >= n, 60 + n / 10)
        t1 = max(at for _, at in reports.approvals.values())
        phase1 = summary([reports.approvals[t][1] - sent[t] for t in tids], t1 - t0, n)
        stats1 = servers.read()

        # ---- phase 2: approval -> done (final message delivered) ---------------------
        answered: dict[str, float] = {}

        def approve(tid: str) -> Any:
            async def go() -> None:
                rid = reports.approvals[tid][0]
                done = reports.wait_for("final", tid)
                answered[tid] = time.monotonic()
                await store.answer(
                    rid,
                    Approved(
                        request_id=rid,
                        channel="rest",
                        responder="bench",
                    ),
                )
                await asyncio.wait_for(done, 120)

            return go

        t2 = time.monotonic()
        await _bounded(inflight, [approve(t) for t in tids])
        await reports.until(lambda: len(reports.finals) >= n, 60 + n / 10)
        t3 = max(reports.finals.values())
        phase2 = summary([reports.finals[t] - answered[t] for t in tids], t3 - t2, n)
        stats2 = servers.read()
        driver_trips = RoundTrips.count - driver0

        memory = await _stored_bytes(client, store, tids[: min(n, 200)])
        views = [await store.thread(t) for t in tids[:3]]
        events = len(views[0].events)
        statuses = {v.state.status for v in views}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        with contextlib.suppress(TimeoutError):
            await reports.until(lambda: len(reports.trips) >= workers, 5)
        transport.close()
        await client.aclose()
    c1: dict[str, int] = {}
    c2: dict[str, int] = {}
    for (s0, _), (s1, _), (s2, _) in zip(stats0, stats1, stats2, strict=True):
        for name, calls in command_delta(s0, s1).items():
            c1[name] = c1.get(name, 0) + calls
        for name, calls in command_delta(s1, s2).items():
            c2[name] = c2.get(name, 0) + calls
    shards = per_shard(servers, stats0, stats2, n) if target.nodes else None
    spread = [0] * store.shared.n
    for tid in tids:
        spread[partitions.of(tid, store.shared.n)] += 1
    return {
        "system": "switchboard",
        "store": target.name,
        "workers": workers,
        "concurrency": concurrency,
        "phase1": phase1,
        "phase2": phase2,
        "round_trip": summary([], (t1 - t0) + (t3 - t2), n),
        "worker_cpu_ms_per_thread": round(sum(reports.cpu) * 1000 / n, 3),
        "round_trips_per_thread": round((driver_trips + sum(reports.trips)) / n, 1),
        "round_trips_note": "client-side writes (commands or pipelines), driver + workers",
        "redis_commands_per_thread": round((sum(c1.values()) + sum(c2.values())) / n, 1),
        "redis_commands_per_thread_by_command": {
            k: round((c1.get(k, 0) + c2.get(k, 0)) / n, 2) for k in sorted({*c1, *c2})
        },
        "shared_server": target.shared,
        "bytes_per_thread": memory,
        "events_per_thread": events,
        "bytes_per_event": round(memory / events) if events else None,
        "final_status": sorted(statuses),
        "shards": shards,
        "threads_per_partition": spread,
        "server_cpu_ms_per_thread": round(
            sum(s2[1] - s0[1] for s0, s2 in zip(stats0, stats2, strict=True)) * 1000 / n, 3
        ),
    }


async def _stored_bytes(client: aioredis.Redis, store: ThreadStore, tids: list[str]) -> int:
    """Mean MEMORY USAGE over the keys of finished threads (exact: SAMPLES 0), with the
    reference keys of the messages they sent. Entries in the shared indexes (thread list,
    request -> thread) are left out: MEMORY USAGE cannot size a member of a hash."""
    total = 0
    for tid in tids:
        view = await store.thread(tid)
        pipe = client.pipeline(transaction=False)
        for key in keys.thread_keys(tid):
            pipe.memory_usage(key, samples=0)
        for o in view.outbox:
            if o.provider_id:
                pipe.memory_usage(keys.ref(o.item.to.channel, o.provider_id), samples=0)
        total += sum(v or 0 for v in await pipe.execute())
    return round(total / len(tids)) if tids else 0
