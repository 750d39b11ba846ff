"""The cluster tests: a real 3-master Redis Cluster on loopback, for this directory only.

The same redis-server binary as the rest of the suite (store.embedded), started once for the
session and stopped at its end. ``redis_url`` and ``redis_client`` are overridden here, so
the fixtures built on them (store, service_factory, the email fixtures) run on the cluster
unchanged: with a cluster URL the store uses redis-py's cluster client and, with
SWITCHBOARD_PARTITIONS unset, store.partitions.CLUSTER_DEFAULT partitions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from store import connection, embedded


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = embedded.start_cluster(tmp_path_factory.mktemp("cluster"), masters=3)
    yield cluster.url
    cluster.stop()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connection.connect(redis_url, retrying=True)
    await client.flushall()  # the cluster client sends it to every master
    yield client
    await client.aclose()
