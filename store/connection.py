"""Redis clients that ride out a restart, and the one log line per outage.

Two kinds of client, because not every command may be sent twice:

- ``retrying``: redis-py's own ``Retry`` with exponential backoff on connection and timeout
  errors. For the API and the channels' listeners: reads, appends (each carries a dedupe
  key: the provider's message id, or one the REST API makes per request), wake-ups (an
  extra one is harmless) and answers (a repeat whose first try went through is refused as
  already answered; the answer stands). A request that arrives while Redis is away waits a
  few seconds for it rather than failing at once.
- ``plain``: no command is repeated by the client. For the workers and the outbox: a lease
  acquire, a fenced commit or an outbox claim whose reply was lost may have happened, and
  sending it again would take a second lease or append the same events twice. Their loops
  catch the error instead, back off, and start again from what Redis holds.

Both reconnect by themselves on the next command once the server is back.

On a single server both are ``CoalescingRedis`` (store/coalesce.py): the commands that
concurrent tasks issue in one event-loop turn share one round trip, and each kind keeps its
rule above per command (a plain client's batch is never sent twice; a retrying client sends
again only the commands whose replies it did not get). The cluster client is redis-py's own,
one round trip per command: see ``connect``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import get_lib_version

from store.coalesce import CoalescingRedis
from store.packing import pack_cluster, packed

INFRA_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
"""Redis is away (refused, reset, restarting, loading its data): worth waiting out.
BusyLoadingError, answered while a restarted server reads its append-only file, is a
ConnectionError."""

POOL_SIZE = 128
"""Connections per client; a blocking pool, so a burst queues for one instead of failing."""
POOL_WAIT_S = 20
"""How long a command waits for a free connection before it fails."""
CONNECT_TIMEOUT_S = 5.0
"""A connect that hangs (a host gone from the network) fails after this long."""
HEALTH_CHECK_S = 30
"""A connection idle this long is PINGed before use: proxies and hosted Redis close idle
connections, and the PING finds out on our side rather than in the middle of a command."""
RETRIES = 8
"""Repeats of one command on a retrying client: 0.05 s doubling to 2 s, about 8 s in all,
which covers a restart of a local server (a few hundred ms) and a failover of a hosted one."""
RETRY_BASE_S = 0.05
RETRY_CAP_S = 2.0


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""``redis+cluster://host:port`` (or ``rediss+cluster://``): a Redis Cluster, found from that
one node; the store then uses redis-py's cluster client and partitions its shared keys."""


def is_cluster(url: str) -> bool:
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


_DRIVER = DriverInfo(lib_version=get_lib_version())  # type: ignore[no-untyped-call]
"""What each connection tells CLIENT SETINFO, made once: redis-py otherwise looks its own
version up in the installed packages' metadata for every new connection, milliseconds of
CPU each while an API under a burst grows its pool."""


def connect(url: str, *, retrying: bool) -> aioredis.Redis:
    """A client for ``url`` (redis://, rediss://, unix:// or a cluster URL); see the module
    doc for which kind."""
    retry = Retry(
        ExponentialBackoff(cap=RETRY_CAP_S, base=RETRY_BASE_S), RETRIES if retrying else 0
    )
    if is_cluster(url):
        scheme, rest = url.split("://", 1)
        cluster = RedisCluster.from_url(
            f"{CLUSTER_SCHEMES[scheme]}://{rest}",
            max_connections=POOL_SIZE,
            retry=retry,
            retry_on_error=list(INFRA_ERRORS),
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
            socket_keepalive=True,
            driver_info=_DRIVER,
        )
        # The cluster client speaks the same commands, pipelines and scripts as the
        # single-server one (it routes each by its key's slot), but shares no base class
        # with it; the store is written against the single-server type. It is left as
        # redis-py makes it, one round trip per command: coalescing there would be per
        # node, and each reply of a batch could be a MOVED or ASK redirect that redis-py's
        # cluster client handles (and retries) per command, which a batch would have to
        # repeat without resending what was answered.
        pack_cluster(cluster)
        return cast(aioredis.Redis, cluster)
    tcp: dict[str, Any] = {} if url.startswith("unix:") else {"socket_keepalive": True}
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT_S,
        retry=retry,
        retry_on_error=list(INFRA_ERRORS),
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_S,
        driver_info=_DRIVER,
        **tcp,
    )
    pool.connection_class = packed(pool.connection_class)
    # The client owns its pool: closing it closes its connections.
    return CoalescingRedis.from_pool(pool)


class Outage:
    """Says once that Redis went away and once that it came back, and paces the retries.

    Every loop that talks to Redis keeps one: ``failed`` on a connection error returns how
    long to wait before trying again (exponential, with jitter, capped), ``ok`` after a
    command that worked. Only the first failure and the recovery are logged, not each retry.
    Given the loop's client, the first failure also drops the pool's idle connections.
    """

    BASE_S = 0.1
    CAP_S = 2.0
    """At most this long between two tries: back at work soon after Redis is."""

    def __init__(self, log: logging.Logger, who: str, client: aioredis.Redis | None = None) -> None:
        self._log = log
        self._who = who
        self._client = client
        self._since: float | None = None
        self._failures = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    async def failed(self, exc: BaseException) -> float:
        if self._since is None:
            self._since = time.monotonic()
            self._log.warning(
                "%s: Redis unreachable (%s); retrying until it is back", self._who, exc
            )
            if self._client is not None:
                # The pool's idle connections point at the server that went away: each would
                # fail once more after it is back, interrupting a run for nothing.
                await self._client.connection_pool.disconnect(inuse_connections=False)
        self._failures += 1
        delay = min(self.BASE_S * 2.0 ** (self._failures - 1), self.CAP_S)
        jitter: float = random.uniform(0.8, 1.2)
        return delay * jitter

    def ok(self) -> None:
        if self._since is not None:
            self._log.warning(
                "%s: Redis is back after %.1f s", self._who, time.monotonic() - self._since
            )
        self._since = None
        self._failures = 0

    async def wait(self, exc: BaseException, stop: asyncio.Event) -> None:
        """Record the failure and sleep out its backoff, or until ``stop`` is set."""
        delay = await self.failed(exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
