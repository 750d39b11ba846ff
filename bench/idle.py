"""Idle cost: Redis commands per second made by a service with no traffic.

    .venv/bin/python -m bench.idle [--seconds 20] [--targets cluster] [--roles worker]

Runs ``main.py worker`` and ``main.py api`` (each alone, no LLM, the repository's
switchboard.toml) against an embedded single server and an embedded 3-master cluster, lets
each settle for a few seconds, then counts the commands the server(s) ran over ``--seconds``
(INFO commandstats, less the INFO calls of this measurement). Not part of ``dev.py bench``.

An idle worker's calls come in slow cycles (stream reads renewed every 60 s, sweeps that
stretch to 80-240 s): for its steady state, settle some 2 minutes (the sweeps reach their
longest interval) and count over 4 minutes or more (``--settle 120 --seconds 240``); a
short window can miss a cycle or catch one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from bench.workload import command_delta
from store import embedded
from store.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
SETTLE_S = 5.0


@contextlib.contextmanager
def targets(which: list[str]) -> Iterator[list[tuple[str, str, list[str]]]]:
    """(name, REDIS_URL, node URLs) of a single server and a 3-master cluster, as asked."""
    found: list[tuple[str, str, list[str]]] = []
    with contextlib.ExitStack() as stack:
        if "single" in which:
            single = embedded.start_ephemeral()
            stack.callback(single.stop)
            found.append(("single server", single.url, [single.url]))
        if "cluster" in which:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-idle-"))
            cluster = embedded.start_cluster(Path(tmp))
            stack.callback(cluster.stop)
            found.append(("3-master cluster", cluster.url, [n.url for n in cluster.nodes]))
        yield found


def _stats(clients: list[redis.Redis]) -> list[Any]:
    return [client.info("commandstats") for client in clients]


def measure(
    role: str, url: str, nodes: list[str], seconds: float, settle: float = SETTLE_S
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "REDIS_"))}
    env |= {"REDIS_URL": url, "PORT": str(free_port()), "SWITCHBOARD_LOG_LEVEL": "WARNING"}
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "main.py", role],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Connected before the first count, so this measurement's own connection set-up
    # (HELLO, CLIENT SETINFO) is not counted as the process's.
    clients = [redis.Redis.from_url(url) for url in nodes]
    try:
        for client in clients:
            client.ping()
        time.sleep(settle)
        before = _stats(clients)
        time.sleep(seconds)
        after = _stats(clients)
    finally:
        process.terminate()
        process.wait(timeout=20)
        for client in clients:
            client.close()
    calls: dict[str, int] = {}
    for b, a in zip(before, after, strict=True):
        for name, n in command_delta(b, a).items():
            calls[name] = calls.get(name, 0) + n
    calls.pop("info", None)  # this measurement's own
    total = sum(calls.values())
    return {
        "role": role,
        "commands_per_s": round(total / seconds, 2),
        "by_command_per_s": {k: round(v / seconds, 2) for k, v in sorted(calls.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--settle",
        type=float,
        default=SETTLE_S,
        help="seconds from start to measuring (more on a busy machine)",
    )
    parser.add_argument(
        "--targets", nargs="+", choices=["single", "cluster"], default=["single", "cluster"]
    )
    parser.add_argument("--roles", nargs="+", choices=["worker", "api"], default=["worker", "api"])
    args = parser.parse_args()
    print("| Redis | process | commands/s | of which |")
    print("|---|---|---|---|")
    with targets(args.targets) as found:
        for name, url, nodes in found:
            for role in args.roles:
                r = measure(role, url, nodes, args.seconds, args.settle)
                top = ", ".join(f"{k} {v}" for k, v in r["by_command_per_s"].items())
                print(f"| {name} | {role} | {r['commands_per_s']} | {top} |", flush=True)


if __name__ == "__main__":
    main()
