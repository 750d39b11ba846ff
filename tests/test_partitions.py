"""Shared streams and indexes in several partitions on one server: what a cluster does, on
the suite's plain Redis (the cluster itself: tests/cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from agent import replay
from model.events import UserMessage
from model.records import Origin
from store import keys, partitions
from store.threads import NewThread, ThreadStore
from tests.test_flow import test_deploy_approved_runs_once_and_answers

__all__ = ["test_deploy_approved_runs_once_and_answers"]

N = 4


@pytest.fixture(autouse=True)
def _partitioned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(partitions.ENV, str(N))


async def test_listings_merge_the_partitions_newest_first(redis_client: aioredis.Redis) -> None:
    store = ThreadStore(redis_client)
    await store.setup()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    tids = [f"th_{i}" for i in range(12)]
    for i, tid in enumerate(tids):
        await store.append_inbound(
            tid,
            UserMessage(channel="rest", sender="a", text="hi", at=start + timedelta(seconds=i)),
            create=NewThread(agent="deploybot", origin=Origin(channel="rest", address="a")),
        )
    used = {partitions.of(tid, N) for tid in tids}
    assert len(used) > 1  # the test means something only if the threads spread
    for p in used:
        assert await redis_client.zcard(keys.threads(p)) > 0
    assert await store.thread_ids(5) == tids[::-1][:5]
    # Replay picks the newest threads overall, not the newest of one partition.
    assert await replay.select(store, "deploybot", limit=5) == tids[::-1][:5]

    entries = []
    for _ in range(50):  # each read returns the partitions that have answered so far
        entries += await store.runs.read("c", 100, 100)
        if len(entries) == len(tids):
            break
    assert sorted(e.fields["t"] for e in entries) == sorted(tids)
    for entry in entries:
        assert entry.key == keys.runs(partitions.of(entry.fields["t"], N))
        await store.runs.ack(entry)
    for p in range(N):
        assert await redis_client.xlen(keys.runs(p)) == 0
    await store.runs.close()


@pytest.mark.parametrize("raw", ["0", "x", "2000", "-1"])
def test_a_bad_partition_count_is_refused(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(partitions.ENV, raw)
    with pytest.raises(ValueError, match=partitions.ENV):
        partitions.count(object())


def test_one_partition_keeps_the_keys_of_before() -> None:
    assert keys.runs(0) == keys.RUNS == "sb:{work}:runs"
    assert keys.runs(3) == "sb:{work-3}:runs"
    assert keys.outbox_retry(3) == "sb:{outbox-3}:retry"
    assert partitions.of("th_anything", 1) == 0
