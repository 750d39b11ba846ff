"""Webhook ingest: ack latency of inbound posts at fixed rates, from a separate load process.

The API runs as the service runs it (``python main.py api``, a subprocess); the load comes
from another process (``python -m bench.ingest load ...``), open loop: request i is due at
start + i / rate and its latency counts from that moment, so a slow server cannot slow the
load down and hide its own queueing. Connections are kept alive and opened as needed.

Each inbound channel is an ``IngestTarget``: how request i looks on the wire and what status
acknowledges it. REST is the one on main today; Slack (signed event posts), Twilio (signed
form posts) and SMTP (a DATA per message, its own loop) plug in here as their channels land.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench.targets import RedisTarget, reset
from bench.workload import MESSAGE, percentile
from store import keys
from store.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class IngestTarget:
    name: str
    request: Callable[[int, int], bytes]
    """(i, port) -> the raw HTTP/1.1 request for message i."""
    ack: int
    """The status that acknowledges a stored message."""


def _rest(i: int, port: int) -> bytes:
    body = json.dumps({"message": MESSAGE, "sender": f"load-{i}"}).encode()
    head = (
        f"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


TARGETS: dict[str, IngestTarget] = {"rest": IngestTarget("rest", _rest, 201)}


# ---- the load process -------------------------------------------------------------------
class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def roundtrip(self, raw: bytes) -> int:
        self.writer.write(raw)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return int(status_line.split()[1])


async def load(port: int, target: IngestTarget, rate: float, seconds: float) -> dict[str, Any]:
    total = int(rate * seconds)
    idle: list[_Conn] = []
    latencies: list[float] = []
    errors: dict[str, int] = {}
    accepted = 0

    async def one(i: int, due: float) -> None:
        nonlocal accepted
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                conn = _Conn(*await asyncio.open_connection("127.0.0.1", port))
            status = await conn.roundtrip(target.request(i, port))
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        latencies.append(time.monotonic() - due)
        if status == target.ack:
            accepted += 1
        else:
            errors[str(status)] = errors.get(str(status), 0) + 1
        idle.append(conn)

    start = time.monotonic() + 0.2
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    wall = time.monotonic() - start
    ms = [x * 1000 for x in latencies]
    return {
        "target": target.name,
        "rate": rate,
        "sent": total,
        "accepted": accepted,
        "accepted_per_s": round(accepted / wall, 1),
        "errors": errors,
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else 0.0,
        "connections": len(idle),
    }


# ---- the driver -------------------------------------------------------------------------
def _wait_http(port: int, proc: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the API process exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the API did not start")


def run_ingest(
    target: RedisTarget, rates: list[float], seconds: float, channels: list[str]
) -> list[dict[str, Any]]:
    reset(target.url)
    port = free_port()
    env = {**os.environ, "REDIS_URL": target.url, "PORT": str(port), "HOST": "127.0.0.1"}
    env.pop("SWITCHBOARD_API_TOKEN", None)
    log = ROOT / "bench" / "results" / "ingest-api.log"
    log.parent.mkdir(exist_ok=True)
    api = subprocess.Popen(
        [sys.executable, "main.py", "api"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    results = []
    client = redis.Redis.from_url(target.url)
    try:
        _wait_http(port, api)
        for name in channels:
            for rate in rates:
                before = int(client.zcard(keys.THREADS))
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.ingest",
                        "load",
                        str(port),
                        name,
                        str(rate),
                        str(seconds),
                    ],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                figures = json.loads(done.stdout)
                stored = int(client.zcard(keys.THREADS)) - before
                figures["stored"] = stored
                figures["dropped"] = figures["accepted"] - stored
                results.append(figures)
                time.sleep(0.5)
    finally:
        api.terminate()
        api.wait(timeout=20)
        client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["load"])
    parser.add_argument("port", type=int)
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("rate", type=float)
    parser.add_argument("seconds", type=float)
    args = parser.parse_args()
    result = asyncio.run(load(args.port, TARGETS[args.target], args.rate, args.seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
