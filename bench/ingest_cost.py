"""What one inbound request costs the API, counted in instructions (load does not move it).

``python -m bench.ingest_cost rest twilio`` runs ``main.py api`` under valgrind's callgrind with
instrumentation off, warms each channel up, then counts the instructions the API process
executes for ``--requests`` requests sent one after another over one kept-open connection
(``callgrind_control -i on`` / ``-i off`` around them); for ``smtp`` a request is one mail
transaction (MAIL, RCPT, DATA) in one kept-open SMTP session. The bench's other ingest
figures (req/s, p99, CPU ms) move with whatever else the machine runs; this one does not, so
a change to the API's code is judged by it (``--keep DIR`` keeps each channel's dump there,
``DIR/<channel>.callgrind``, for ``callgrind_annotate``). One request at a time is the case
without batching: under load several requests share an event-loop pass, so the figure is an
upper bound of the per-request cost at 1,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.ingest import ROOT, _Conn, _HttpConn, _SmtpConn, _wait_port, api_env
from bench.wire import TARGETS, fake_slack_api
from store.embedded import free_port, start_ephemeral

WARMUP = 100
"""Requests first, uncounted: imports done lazily, caches filled, the allocator settled."""


async def _send(port: int, smtp_port: int, name: str, first: int, count: int) -> None:
    target = TARGETS[name]
    conn: _Conn
    if target.protocol == "smtp":  # one session, a mail transaction per request
        conn = await _SmtpConn.open(smtp_port)
    else:
        conn = _HttpConn(*await asyncio.open_connection("127.0.0.1", port))
    try:
        for n in range(first, first + count):
            status = await conn.roundtrip(target.request(n, port))
            if status != target.ack:
                raise RuntimeError(f"{name} request {n}: {target.protocol} {status}")
    finally:
        conn.close()


def _control(prefix: Path, pid: int, *args: str) -> None:
    done = subprocess.run(
        ["callgrind_control", f"--vgdb-prefix={prefix}", *args, str(pid)],
        check=True,
        capture_output=True,
        env=os.environ | {"HOST": "127.0.0.1"},  # valgrind names its files after $HOST
    )
    if b"error" in done.stdout + done.stderr:
        raise RuntimeError(f"callgrind_control {' '.join(args)}: {done.stdout + done.stderr!r}")


def _instructions(out_dir: Path, timeout: float = 300) -> int:
    """The Ir of the dump ``callgrind_control -d`` asked for (written once valgrind gets to
    it: a large program takes a while)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for dump in out_dir.glob("callgrind.out.*"):
            found = re.search(r"^totals: (\d+)", dump.read_text(), re.M)
            if found:
                return int(found.group(1))
        time.sleep(0.5)
    raise RuntimeError("callgrind wrote no dump")


def measure(
    channels: list[str], requests: int, keep: Path | None = None
) -> list[dict[str, object]]:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    redis = start_ephemeral()
    port, smtp_port = free_port(), free_port()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, fake_slack_api() as slack_api:
        work = Path(tmp)
        env = api_env(work, redis.url, port, slack_api, smtp_port)
        out_dir = work / "cg"
        out_dir.mkdir()
        prefix = work / "vgdb"
        api = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                "--vgdb=yes",
                f"--vgdb-prefix={prefix}",
                f"--callgrind-out-file={out_dir}/callgrind.out",
                sys.executable,
                "main.py",
                "api",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(work / "api.log").open("w"),
        )
        try:
            _wait_port(port, api, timeout=600)
            _wait_port(smtp_port, api, timeout=600)
            first = 0
            for name in channels:
                asyncio.run(_send(port, smtp_port, name, first, WARMUP))
                first += WARMUP
                for old in out_dir.glob("callgrind.out*"):
                    old.unlink()
                _control(prefix, api.pid, "--zero")
                _control(prefix, api.pid, "--instr=on")
                asyncio.run(_send(port, smtp_port, name, first, requests))
                _control(prefix, api.pid, "--instr=off")
                _control(prefix, api.pid, "--dump")
                first += requests
                total = _instructions(out_dir)
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    for dump in out_dir.glob("callgrind.out.*"):
                        shutil.copy(dump, keep / f"{name}.callgrind")
                rows.append(
                    {
                        "channel": name,
                        "requests": requests,
                        "instructions_per_request": round(total / requests),
                    }
                )
        finally:
            api.terminate()
            api.wait(timeout=120)
            redis.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_cost", description=__doc__)
    parser.add_argument("channels", nargs="+", choices=sorted(TARGETS))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="keep each channel's callgrind dump here")
    args = parser.parse_args()
    for row in measure(args.channels, args.requests, args.keep):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
