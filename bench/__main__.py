"""Run the benchmarks: python3 dev.py bench [--threads N] [--quick] [--only SECTION ...]

Sections: roundtrip (Switchboard on Redis with 1 and 2 worker processes, LangGraph with its
Postgres and in-memory checkpointers), overhead (per agent step), long (long threads),
tokens (context tokens), ingest (webhook ack latency), telemetry (what logs and traces
cost per round trip). Prints a table; writes JSON to
bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.targets import (
    RedisTarget,
    TargetUnavailable,
    embedded_cluster,
    embedded_redis,
    machine_redis,
)

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("roundtrip", "overhead", "long", "tokens", "ingest", "telemetry")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--threads", type=int, default=2000, help="threads per round trip run")
    p.add_argument("--quick", action="store_true", help="a fast run: 200 threads, short ingest")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="worker processes")
    p.add_argument("--concurrency", type=int, default=32, help="runs per worker process")
    p.add_argument("--inflight", type=int, default=64, help="threads in progress at a time")
    p.add_argument(
        "--repeat", type=int, default=3, help="runs of each round trip setup; the median is kept"
    )
    p.add_argument("--redis", default="127.0.0.1:6379", help="the machine's Redis ('' to skip)")
    p.add_argument("--redis-db", type=int, default=15, help="database number the bench may use")
    p.add_argument("--no-embedded", action="store_true", help="skip the embedded Redis")
    p.add_argument(
        "--cluster",
        action="store_true",
        help="round trip on a 3-master embedded Redis Cluster too (figures per shard)",
    )
    p.add_argument("--no-peer", action="store_true", help="skip LangGraph")
    p.add_argument("--rates", nargs="+", type=float, default=[100, 300, 1000])
    p.add_argument("--ingest-seconds", type=float, default=5.0)
    p.add_argument(
        "--channels",
        nargs="+",
        choices=["rest", "slack", "twilio", "smtp"],
        default=["rest", "slack", "twilio", "smtp"],
        help="inbound channels of the ingest section",
    )
    p.add_argument(
        "--api-processes",
        type=int,
        default=2,
        help="SWITCHBOARD_API_PROCESSES of the API under ingest load",
    )
    p.add_argument("--lengths", nargs="+", type=int, default=[10, 100, 1000, 10000])
    p.add_argument("--profile", help="profile the worker processes (pyinstrument) into PREFIX.N")
    args = p.parse_args(argv)
    if args.quick:
        args.repeat = 1
        args.threads = min(args.threads, 200)
        args.ingest_seconds = min(args.ingest_seconds, 2.0)
    return args


@contextlib.contextmanager
def targets(args: argparse.Namespace, notes: list[str]) -> Iterator[list[RedisTarget]]:
    with contextlib.ExitStack() as stack:
        found = []
        if args.redis:
            host, _, port = args.redis.partition(":")
            try:
                found.append(
                    stack.enter_context(machine_redis(host, int(port or 6379), args.redis_db))
                )
            except TargetUnavailable as exc:
                notes.append(f"machine Redis skipped: {exc}")
        if not args.no_embedded:
            found.append(stack.enter_context(embedded_redis()))
        if args.cluster:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-cluster-")))
            found.append(stack.enter_context(embedded_cluster(work)))
        yield found


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from bench import ingest, longthreads, peer, roundtrip, telemetry, tokens
    from bench.workload import RoundTrips

    RoundTrips.install()

    notes: list[str] = []
    out: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "threads": args.threads,
        "inflight": args.inflight,
        "repeat": args.repeat,
        "load_average_at_start": os.getloadavg(),
        "notes": notes,
    }
    with targets(args, notes) as stores:
        # The other sections run on one server; the cluster is for the round trip.
        primary = next((s for s in stores if not s.nodes), None)
        if "roundtrip" in args.only:
            # Setups take turns, repeat after repeat, so that load from elsewhere on the
            # machine falls on all of them alike; each keeps its median run.
            runs: dict[str, list[dict[str, Any]]] = {}
            for rep in range(args.repeat):
                for key, job in round_trip_jobs(args, stores, peer, roundtrip, notes):
                    print(f"[{rep + 1}/{args.repeat}] {key} ...", flush=True)
                    try:
                        runs.setdefault(key, []).append(await job())
                    except Exception as exc:  # the peer's database may be missing: say so
                        notes.append(f"{key} skipped: {type(exc).__name__}: {exc}")
                        print(notes[-1], flush=True)
            out["roundtrip"] = [median_run(r) for r in runs.values() if r]
            out["roundtrip_all_runs"] = runs
        if primary and "overhead" in args.only:
            print("overhead per step ...", flush=True)
            out["overhead"] = {"store": primary.name, **await longthreads.run_overhead(primary)}
        if primary and "long" in args.only:
            print("long threads ...", flush=True)
            out["long"] = {
                "store": primary.name,
                "rows": await longthreads.run_long(primary, args.lengths),
            }
        if "tokens" in args.only:
            print("context tokens ...", flush=True)
            out["tokens"] = token_figures(tokens, longthreads, notes)
        if primary and "telemetry" in args.only:
            print("observability cost ...", flush=True)
            out["telemetry"] = await telemetry.run_telemetry(primary)
        if primary and "ingest" in args.only:
            print("webhook ingest ...", flush=True)
            out["ingest"] = {
                "store": primary.name,
                "api_processes": args.api_processes,
                "rows": await asyncio.to_thread(
                    ingest.run_ingest,
                    primary,
                    args.rates,
                    args.ingest_seconds,
                    args.channels,
                    args.api_processes,
                ),
            }
    return out


def round_trip_jobs(
    args: argparse.Namespace, stores: list[RedisTarget], peer: Any, roundtrip: Any, notes: list[str]
) -> list[tuple[str, Any]]:
    jobs: list[tuple[str, Any]] = []
    if not args.no_peer:
        jobs.append(("langgraph postgres", lambda: peer.run_postgres(args.threads, args.inflight)))
        jobs.append(("langgraph memory", lambda: peer.run_memory(args.threads, args.inflight)))
    for store in stores:
        for workers in args.workers:

            def job(store: RedisTarget = store, workers: int = workers) -> Any:
                return roundtrip.run_roundtrip(
                    store,
                    args.threads,
                    workers,
                    concurrency=args.concurrency,
                    inflight=args.inflight,
                    profile=args.profile,
                )

            jobs.append((f"switchboard {store.name} {workers}w", job))
    return jobs


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose round trip throughput is the median of the setup's runs."""
    ordered = sorted(runs, key=lambda r: r["round_trip"]["throughput"])
    return {**ordered[(len(ordered) - 1) // 2], "runs": len(runs)}


def token_figures(tokens: Any, longthreads: Any, notes: list[str]) -> list[dict[str, Any]] | None:
    from bench.workload import AGENT, registry

    try:
        enc = tokens.encoding()
    except Exception as exc:
        notes.append(f"token counts left out: {exc}")
        return None
    agent = registry().get(AGENT)
    rows = []
    for cycles in (1, 15, 143):
        events = []
        for _ in range(cycles):
            events += longthreads.cycle("th_x")[0]
        rows.append(tokens.compare(agent, events, enc))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    result = asyncio.run(main_async(args))
    result["duration_s"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench-{result['date'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(report.render(result))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
