"""The thread API says what the next context holds: version, tokens, budget, compaction."""

from __future__ import annotations

from dataclasses import replace

import httpx
import redis.asyncio as aioredis

from agent.config import Registry
from channels.app import create_app
from channels.rest import rest_channel
from channels.rest.auth import Access
from model.records import Origin
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import NewThread, ThreadStore
from tests.test_compaction import _long

BUDGET = 2_000


async def test_a_long_thread_shows_what_was_compacted(
    store: ThreadStore, redis_client: aioredis.Redis, registry: Registry
) -> None:
    agent = replace(registry.agents["deploybot"], context_tokens=BUDGET)
    events = _long(60)
    tid = "th_long"
    origin = Origin(channel="rest", address="alice")
    await store.append_inbound(tid, events[0], create=NewThread(agent="deploybot", origin=origin))
    lease = await store.acquire(tid, "test", 10_000)
    assert lease is not None
    await store.commit(lease, ttl_ms=10_000, events=events[1:], release=True)

    reg = Registry({"deploybot": agent}, "deploybot")
    port = ChannelPort(store, OutboxStore(redis_client))
    rest = rest_channel(port, reg, Access())
    app = create_app(redis_client, reg, access=Access(), channels=[rest])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sb") as api:
        got = (await api.get(f"/v1/threads/{tid}")).json()["context"]
    assert got["prompt"] == "deploybot/v1"
    assert got["budget"] == BUDGET
    assert 0 < got["tokens"] <= BUDGET
    assert got["compacted_turns"] > 0
    assert got["compacted_events"] >= 6 * got["compacted_turns"]
    assert got["counting"]
