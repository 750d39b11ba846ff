"""Where the Switchboard side runs: the machine's Redis (one database of it), or an embedded one.

The machine's Redis may hold other data: the benchmark uses one database number, claims it
with a marker key, and refuses to touch a database that holds anything without that marker.
Only that database is ever flushed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from store import embedded

MARKER = "switchboard-bench:owner"


@dataclass(frozen=True)
class RedisTarget:
    name: str
    url: str
    shared: bool
    """The machine's server: other clients may add to the command counts."""
    nodes: tuple[str, ...] = ()
    """A cluster: its masters (plain URLs), read one by one for their statistics."""


class TargetUnavailable(Exception):
    """The target cannot be used; the benchmark skips it and says why."""


def _claim(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
        size = int(client.dbsize())
        if size and not client.exists(MARKER):
            raise TargetUnavailable(f"{url} holds {size} keys that are not ours; not touching it")
        client.flushdb()
        client.set(MARKER, "1")
    except redis.ConnectionError as exc:
        raise TargetUnavailable(f"{url} unreachable: {exc}") from None
    finally:
        client.close()


def reset_target(target: RedisTarget) -> None:
    """Empty the target between runs; a cluster (always our embedded one) node by node."""
    if not target.nodes:
        reset(target.url)
        return
    for url in target.nodes:
        client = redis.Redis.from_url(url)
        try:
            client.flushall()
        finally:
            client.close()


def reset(url: str) -> None:
    """Empty the benchmark's database between runs (only ours: the marker says so)."""
    client = redis.Redis.from_url(url)
    try:
        if int(client.dbsize()) and not client.exists(MARKER):
            raise TargetUnavailable(f"{url} is not the benchmark's database")
        client.flushdb()
        client.set(MARKER, "1")
    finally:
        client.close()


@contextlib.contextmanager
def machine_redis(host: str, port: int, db: int) -> Iterator[RedisTarget]:
    url = f"redis://{host}:{port}/{db}"
    _claim(url)
    try:
        yield RedisTarget(f"redis {_version(url)} (machine, db {db})", url, shared=True)
    finally:
        with contextlib.suppress(redis.RedisError):
            client = redis.Redis.from_url(url)
            if client.exists(MARKER):
                client.flushdb()
            client.close()


@contextlib.contextmanager
def embedded_redis() -> Iterator[RedisTarget]:
    server = embedded.start_ephemeral()
    try:
        _claim(server.url)
        yield RedisTarget(f"redis {_version(server.url)} (embedded)", server.url, shared=False)
    finally:
        server.stop()


@contextlib.contextmanager
def embedded_cluster(work_dir: Path, masters: int = 3) -> Iterator[RedisTarget]:
    cluster = embedded.start_cluster(work_dir, masters)
    try:
        version = _version(cluster.nodes[0].url)
        yield RedisTarget(
            f"redis {version} cluster of {masters} (embedded)",
            cluster.url,
            shared=False,
            nodes=tuple(n.url for n in cluster.nodes),
        )
    finally:
        cluster.stop()


def _version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        info: Any = client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        client.close()
