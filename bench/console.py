"""The console's live stream: what one change costs with 0, 1, 10 or 50 consoles open.

    python -m bench.console [--clients 0 1 10 50] [--changes 200] [--rate 100]

Starts ``python main.py api`` (embedded Redis, no worker: one new thread is one change),
opens N streams on /v1/stream, then starts ``--changes`` threads through the REST API at
``--rate`` per second. For each setup it reports how long a change took to reach the
streams (from the POST's answer to the event's arrival, median and p95 over every stream)
and how many Redis commands the service ran per change (INFO commandstats), so the cost of
fan-out shows against the zero-console line. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import httpx
import redis.asyncio as aioredis

from store.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


class Stream:
    """One open console: when each change reached it."""

    def __init__(self, expected: int) -> None:
        self.arrived: dict[str, float] = {}
        self.expected = expected
        self.ready = asyncio.Event()
        self.done = asyncio.Event()

    async def read(self, client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/v1/stream", timeout=None) as response:
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "snapshot":
                    self.ready.set()
                elif line.startswith("data:") and event == "thread":
                    first = json.loads(line[5:])["thread"].get("first") or {}
                    self.arrived.setdefault(first.get("text", ""), time.perf_counter())
                    if len(self.arrived) >= self.expected:
                        self.done.set()


async def _commands(r: aioredis.Redis) -> int:
    stats: dict[str, Any] = await r.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


async def setup_run(
    base: str, r: aioredis.Redis, clients: int, changes: int, rate: float
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base) as client:
        streams = [Stream(changes) for _ in range(clients)]
        tasks = [asyncio.create_task(s.read(client)) for s in streams]
        await asyncio.gather(*(s.ready.wait() for s in streams))
        before = await _commands(r)
        sent: dict[str, float] = {}
        tag = f"c{clients}-{time.monotonic_ns()}"
        for i in range(changes):
            marker = f"{tag}-{i}"
            reply = await client.post("/v1/threads", json={"message": marker})
            reply.raise_for_status()
            sent[marker] = time.perf_counter()
            await asyncio.sleep(1 / rate)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in streams)), 10)
        calls = await _commands(r) - before
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    lags = [(s.arrived[m] - t) * 1000 for s in streams for m, t in sent.items() if m in s.arrived]
    return {
        "clients": clients,
        "changes": changes,
        "p50_ms": statistics.median(lags) if lags else None,
        "p95_ms": sorted(lags)[int(len(lags) * 0.95)] if lags else None,
        "missing": clients * changes - len(lags),
        "redis_calls_per_change": calls / changes,
    }


async def run(args: argparse.Namespace, base: str, socket: Path) -> list[dict[str, Any]]:
    r = aioredis.Redis(unix_socket_path=str(socket))
    try:
        return [await setup_run(base, r, n, args.changes, args.rate) for n in args.clients]
    finally:
        await r.aclose()


def start_service(data: Path, log: IO[bytes]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "REDIS_"))}
    env.update(PORT=str(port), SWITCHBOARD_DATA_DIR=str(data))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "api"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(400):
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/healthz").status_code == 200:
                return process, base
        time.sleep(0.05)
    process.terminate()
    raise SystemExit("the service did not start")


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| consoles open | changes | reached them: p50 | p95 | missed | Redis calls per change |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        p50 = f"{r['p50_ms']:.1f} ms" if r["p50_ms"] is not None else "-"
        p95 = f"{r['p95_ms']:.1f} ms" if r["p95_ms"] is not None else "-"
        calls = f"{r['redis_calls_per_change']:.1f}"
        rows.append(
            f"| {r['clients']} | {r['changes']} | {p50} | {p95} | {r['missing']} | {calls} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    p.add_argument("--clients", nargs="+", type=int, default=[0, 1, 10, 50])
    p.add_argument("--changes", type=int, default=200)
    p.add_argument("--rate", type=float, default=100, help="changes per second")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, Path(tmp, "service.log").open("wb") as log:
        process, base = start_service(Path(tmp), log)
        try:
            print(table(asyncio.run(run(args, base, Path(tmp, "redis.sock")))))
        finally:
            process.terminate()
            process.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
