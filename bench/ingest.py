"""Webhook ingest: ack latency of inbound posts at fixed rates, from a separate load process.

The API runs as the service runs it (``python main.py api``, a subprocess) with every inbound
channel on, in ``SWITCHBOARD_API_PROCESSES`` processes (2 unless ``--api-processes`` says
otherwise; its CPU per request summed over all of them); the load comes from another process
(``python -m bench.ingest load ...``), open loop: message i is due at start + i / rate and its
latency counts from that moment, so a slow server cannot slow the load down and hide its own
queueing.

HTTP targets (REST, signed Slack events, signed Twilio texts) use keep-alive connections opened
as needed. SMTP sends one message per transaction (MAIL, RCPT, DATA) over a pool of at most
``SMTP_CONNECTIONS`` kept-open connections, opened as needed; its latency runs from the due
time to the reply after DATA. What each channel's messages look like is in ``bench/wire.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

import redis

from agent import collector
from bench.targets import RedisTarget, reset
from bench.wire import (
    MAIL_FROM,
    RCPT_TO,
    TARGETS,
    IngestTarget,
    config,
    fake_slack_api,
    service_env,
)
from bench.workload import percentile
from store import keys
from store.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
SMTP_CONNECTIONS = 20
"""At most this many SMTP connections at once (Postfix's default per-destination limit)."""
KEEPALIVE_EXPIRY = 4.0
"""Seconds a kept-alive connection may sit idle before the client drops it rather than use
it (uvicorn closes one idle 5 s; httpx and aiohttp expire theirs so, for the same reason)."""


# ---- the load process -------------------------------------------------------------------
class _Conn(Protocol):
    async def roundtrip(self, raw: bytes) -> int: ...

    def close(self) -> None: ...


class _HttpConn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        self.writer.close()

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


class _SmtpConn:
    """One SMTP session; each ``roundtrip`` is one mail transaction, its reply after DATA."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        self.writer.close()

    @classmethod
    async def open(cls, port: int) -> _SmtpConn:
        conn = cls(*await asyncio.open_connection("127.0.0.1", port))
        await conn._expect(220)
        await conn._command(b"EHLO load.example.com", 250)
        return conn

    async def _reply(self) -> int:
        while True:  # multi-line replies: "250-..." lines, then "250 ..."
            line = await self.reader.readline()
            if not line:
                raise asyncio.IncompleteReadError(line, None)
            if line[3:4] != b"-":
                return int(line[:3])

    async def _expect(self, code: int) -> None:
        got = await self._reply()
        if got != code:
            raise ValueError(f"SMTP {got}")

    async def _command(self, line: bytes, code: int) -> None:
        self.writer.write(line + b"\r\n")
        await self._expect(code)

    async def roundtrip(self, raw: bytes) -> int:
        await self._command(f"MAIL FROM:<{MAIL_FROM}>".encode(), 250)
        await self._command(f"RCPT TO:<{RCPT_TO}>".encode(), 250)
        await self._command(b"DATA", 354)
        self.writer.write(raw + b".\r\n")
        return await self._reply()


async def load(
    port: int, target: IngestTarget, rate: float, seconds: float, first: int
) -> dict[str, Any]:
    """Send ``rate * seconds`` messages, numbered from ``first``, open loop."""
    total = int(rate * seconds)
    idle: list[tuple[float, _Conn]] = []  # (when it was last used, the connection)
    opened = 0
    slots = asyncio.Semaphore(SMTP_CONNECTIONS if target.protocol == "smtp" else 1_000_000)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    accepted = 0

    async def connect() -> _Conn:
        nonlocal opened
        opened += 1
        if target.protocol == "smtp":
            return await _SmtpConn.open(port)
        return _HttpConn(*await asyncio.open_connection("127.0.0.1", port))

    async def one(i: int, due: float) -> None:
        nonlocal accepted
        async with slots:
            conn = None
            while idle and conn is None:
                used, conn = idle.pop()
                if time.monotonic() - used > KEEPALIVE_EXPIRY:
                    conn.close()  # the server may have closed it: expired, as clients do
                    conn = None
            try:
                if conn is None:
                    conn = await connect()
                status = await conn.roundtrip(target.request(first + i, port))
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            latencies.append(time.monotonic() - due)
            if status == target.ack:
                accepted += 1
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1
            idle.append((time.monotonic(), conn))

    start = time.monotonic() + 0.2
    # Only the messages under way are held: every task kept to the end made each full
    # collection of this process walk all of them (see ``main``).
    pending: set[asyncio.Task[None]] = set()
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
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
        "connections": opened,
    }


# ---- the driver -------------------------------------------------------------------------
def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the API process exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _wait_serving(log: Path, processes: int, proc: subprocess.Popen[bytes]) -> None:
    """Until every API process serves (each sibling starts a new interpreter): a kept-alive
    connection stays with the process that accepted it, so load sent sooner would stay with
    the first process."""
    deadline = time.monotonic() + 60
    while log.read_text().count("Application startup complete") < processes:
        if proc.poll() is not None:
            raise RuntimeError("the API process exited")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all {processes} API processes serve")
        time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): what a request costs the API
    moves far less with the machine's other load than its throughput does."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """``cpu_seconds`` of a process and of every process under it (the API's siblings with
    SWITCHBOARD_API_PROCESSES > 1), by pid; one that ended meanwhile is not there."""
    found: dict[int, float] = {}
    todo = [pid]
    while todo:
        each = todo.pop()
        try:
            found[each] = cpu_seconds(each)
            children = Path(f"/proc/{each}/task/{each}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        todo += [int(c) for c in children]
    return found


def stored_messages(client: redis.Redis) -> int:
    """Messages waiting in the inboxes of all threads (no worker runs: nothing is taken)."""
    total = 0
    threads = [
        t.decode() if isinstance(t, bytes) else str(t) for t in client.zrange(keys.THREADS, 0, -1)
    ]
    for start in range(0, len(threads), 1000):
        pipe = client.pipeline(transaction=False)
        for tid in threads[start : start + 1000]:
            pipe.llen(keys.inbox(tid))
        total += sum(int(n) for n in pipe.execute())
    return total


_OURS = ("REDIS_", "SWITCHBOARD_", "SLACK_", "TWILIO_", "SMS_", "EMAIL_", "SMTP_")


def api_env(
    work: Path, redis_url: str, port: int, slack_api: str, smtp_port: int
) -> dict[str, str]:
    """The environment of ``main.py api`` under load: every inbound channel on, the bench's
    agent config (written to ``work``), and none of the machine's own channel settings."""
    toml = work / "switchboard.toml"
    toml.write_text(config(ROOT / "switchboard.toml"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.pop("PUBLIC_BASE_URL", None)
    env |= service_env(slack_api, smtp_port)
    env |= {"REDIS_URL": redis_url, "PORT": str(port), "HOST": "127.0.0.1"}
    env["SWITCHBOARD_CONFIG"] = str(toml)
    return env


def run_ingest(
    target: RedisTarget,
    rates: list[float],
    seconds: float,
    channels: list[str],
    api_processes: int = 2,
) -> list[dict[str, Any]]:
    reset(target.url)
    port, smtp_port = free_port(), free_port()
    results = []
    client = redis.Redis.from_url(target.url)
    with tempfile.TemporaryDirectory() as tmp, fake_slack_api() as slack_api:
        env = api_env(Path(tmp), target.url, port, slack_api, smtp_port)
        env["SWITCHBOARD_API_PROCESSES"] = str(api_processes)
        log = ROOT / "bench" / "results" / "ingest-api.log"
        log.parent.mkdir(exist_ok=True)
        api = subprocess.Popen(
            [sys.executable, "main.py", "api"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        first = 0
        try:
            _wait_port(port, api)
            _wait_serving(log, api_processes, api)
            if "smtp" in channels:
                _wait_port(smtp_port, api)
            for name in channels:
                to = smtp_port if TARGETS[name].protocol == "smtp" else port
                for rate in rates:
                    before = stored_messages(client)
                    cpu_before = tree_cpu_seconds(api.pid)
                    args = [str(to), name, str(rate), str(seconds), str(first)]
                    done = subprocess.run(
                        [sys.executable, "-m", "bench.ingest", "load", *args],
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    figures = json.loads(done.stdout)
                    spent = {
                        pid: cpu - cpu_before.get(pid, 0.0)
                        for pid, cpu in tree_cpu_seconds(api.pid).items()
                    }
                    per = 1000 / max(figures["accepted"], 1)
                    figures["api_cpu_ms"] = round(sum(spent.values()) * per, 3)
                    # how evenly the kernel spread the connections over the processes
                    figures["api_cpu_ms_by_process"] = [round(x * per, 3) for x in spent.values()]
                    first += figures["sent"]
                    stored = stored_messages(client) - before
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
    parser.add_argument("first", type=int, nargs="?", default=0, help="number of the first message")
    args = parser.parse_args()
    target = TARGETS[args.target]
    # The load process must not stall itself: a latency counts from the message's due time,
    # so a pause of this process's collector is charged to the server (a full collection
    # over the tasks and connections it held took 160 ms on a loaded machine, some 200
    # messages late at 1,000/s, where a remote sender never pauses on our machine). What
    # start-up made is frozen and young collections come less often, as in the service.
    collector.settle()
    result = asyncio.run(load(args.port, target, args.rate, args.seconds, args.first))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
