"""The console stream's hub (channels.rest.live): one feed, fanned out, one snapshot each."""

from __future__ import annotations

import asyncio
import contextlib
import json

import redis.asyncio as aioredis

from channels.rest.live import Hub
from model.events import UserMessage
from model.records import Origin
from store.changes import RESYNC, ChangeFeed
from store.digest import Digests
from store.threads import NewThread, ThreadStore

NEW = NewThread(agent="deploybot", origin=Origin(channel="rest", address="alice"))


async def test_each_connection_gets_one_snapshot_then_every_change(
    redis_client: aioredis.Redis, store: ThreadStore
) -> None:
    hub = Hub(ChangeFeed(redis_client), Digests(redis_client))
    async with contextlib.AsyncExitStack() as stack:
        early = [await stack.enter_async_context(hub.listen()) for _ in range(3)]
        for queue in early:  # joined while the feed was subscribing: its RESYNC covers them
            assert await asyncio.wait_for(queue.get(), 5) == RESYNC
        late = await stack.enter_async_context(hub.listen())
        assert late.get_nowait() == RESYNC  # the feed is up: the newcomer's own
        for queue in [*early, late]:
            assert queue.empty()

        message = UserMessage(channel="rest", sender="alice", text="deploy v1 please")
        await store.append_inbound("th_live", message, create=NEW)
        for queue in [*early, late]:
            kind, data = await asyncio.wait_for(queue.get(), 5)
            assert kind == "thread"
            change = json.loads(data)
            assert change["thread"]["first"]["text"] == "deploy v1 please"
            assert [e["text"] for e in change["inbox"]] == ["deploy v1 please"]
    snapshot = await hub.snapshot()
    assert [t.meta.thread_id for t in snapshot.threads] == ["th_live"]
