"""Flows of the suite, run again on the Redis Cluster (fixtures: tests/cluster/conftest.py).

The tests are imported, not copied: pytest collects them here a second time, with this
directory's ``redis_url`` and ``redis_client``. Each crosses the shards: a thread's keys sit
on one slot, its work and index entries on the partitions of its thread and request ids
(and an outbox item's recovery entry on its thread's partition of the retry set; a
received mail's reference on the slot of its Message-ID, written ahead of the thread's).
"""

from __future__ import annotations

import os
from typing import cast

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from store import keys, partitions
from store.packing import HiredisPacking
from store.threads import ThreadStore
from tests.test_crash import test_killed_worker_thread_is_finished_by_another_without_rerun
from tests.test_email_inbound import (
    test_duplicate_delivery_is_stored_once,
    test_reply_by_in_reply_to,
)
from tests.test_email_reroute import (
    email_registry,
    test_a_relay_5xx_is_offered_on_the_origin,
)
from tests.test_flow import test_deploy_approved_runs_once_and_answers
from tests.test_idle import test_an_idle_worker_and_outbox_send_nothing_per_loop_turn
from tests.test_outbox_direct import (
    _no_handoff_left,
    test_a_commit_claims_its_new_items_for_its_own_dispatcher,
    test_a_died_claim_is_not_sent_again_where_a_repeat_is_unsafe,
    test_a_handed_item_that_fails_is_retried_and_its_recovery_entry_kept,
    test_a_pointer_meeting_a_live_claim_stays_pending,
    test_an_item_whose_process_died_is_sent_by_another_once_its_claim_runs_out,
)

pytest_plugins = ("tests.email_fixtures",)

__all__ = [
    "_no_handoff_left",
    "email_registry",
    "test_a_commit_claims_its_new_items_for_its_own_dispatcher",
    "test_a_died_claim_is_not_sent_again_where_a_repeat_is_unsafe",
    "test_a_handed_item_that_fails_is_retried_and_its_recovery_entry_kept",
    "test_a_pointer_meeting_a_live_claim_stays_pending",
    "test_a_relay_5xx_is_offered_on_the_origin",
    "test_an_idle_worker_and_outbox_send_nothing_per_loop_turn",
    "test_an_item_whose_process_died_is_sent_by_another_once_its_claim_runs_out",
    "test_deploy_approved_runs_once_and_answers",
    "test_duplicate_delivery_is_stored_once",
    "test_killed_worker_thread_is_finished_by_another_without_rerun",
    "test_reply_by_in_reply_to",
]


@pytest.fixture(autouse=True)
def _default_partitions() -> None:
    # The crash test's worker process does not inherit SWITCHBOARD_*: all sides must agree.
    assert partitions.ENV not in os.environ


async def test_the_partitions_spread_over_the_masters(
    redis_client: aioredis.Redis, store: ThreadStore
) -> None:
    cluster = cast(RedisCluster, redis_client)
    assert store.shared.n == partitions.CLUSTER_DEFAULT
    for key in (keys.runs, keys.outbox_stream, keys.pending):
        masters = {cluster.get_node_from_key(k).name for k in store.shared.every(key)}
        assert len(masters) == 3, key


async def test_cluster_connections_are_packed_by_hiredis(redis_client: aioredis.Redis) -> None:
    await redis_client.set("sb:test:packed", "1")
    nodes = redis_client.get_nodes()  # type: ignore[attr-defined]
    assert nodes
    assert all(issubclass(n.connection_class, HiredisPacking) for n in nodes)
    await redis_client.delete("sb:test:packed")
