"""Digests and the change feed (store.digest, store.changes) on a real Redis."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from model.events import UserMessage
from model.records import Origin
from store.changes import RESYNC, ChangeFeed
from store.digest import TAIL, Digests
from store.threads import NewThread, ThreadStore
from tests.conftest import Service

NEW = NewThread(agent="deploybot", origin=Origin(channel="rest", address="alice"))


async def test_every_write_a_watcher_sees_is_announced(
    redis_client: aioredis.Redis, store: ThreadStore
) -> None:
    batches = ChangeFeed(redis_client).batches()
    assert await anext(batches) == RESYNC  # subscribed: read everything once
    await store.append_inbound(
        "th_a", UserMessage(channel="rest", sender="a", text="x"), create=NEW
    )
    assert await asyncio.wait_for(anext(batches), 5) == {"th_a"}
    # A duplicate changes nothing, and says nothing.
    await store.append_inbound(
        "th_a", UserMessage(channel="rest", sender="a", text="x"), dedupe="m"
    )
    assert await asyncio.wait_for(anext(batches), 5) == {"th_a"}
    await store.append_inbound(
        "th_a", UserMessage(channel="rest", sender="a", text="y"), dedupe="m"
    )
    with contextlib.suppress(TimeoutError):
        extra = await asyncio.wait_for(anext(batches), 0.3)
        raise AssertionError(f"a duplicate was announced: {extra}")
    await batches.aclose()


async def test_digests_of_a_request_and_its_thread(service: Service) -> None:
    r = await service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": "alice"}
    )
    tid = r.json()["thread_id"]
    await service.settled(tid, "awaiting_human")
    digests = Digests(service.store.redis)

    [pending] = await digests.pending()
    assert pending.request.tool == "deploy"
    assert pending.agent == "deploybot"
    assert pending.asked is not None
    assert (pending.asked.by, pending.asked.text) == ("alice", "deploy v1.2.3 to production")
    assert [(o.channel, o.address, o.status) for o in pending.offers] == [("rest", "alice", "sent")]

    [thread] = await digests.threads()
    assert thread.first is not None
    assert thread.first.text == "deploy v1.2.3 to production"
    assert thread.last_word_kind == "approval"
    assert thread.pending == 1
    assert thread.events >= 2

    # A change sends the log from where the receiver is; unknown: the tail.
    [change] = await digests.changes({tid: None})
    assert change.events_from == max(0, thread.events - TAIL)
    assert len(change.events) == thread.events - change.events_from
    [change] = await digests.changes({tid: thread.events - 1})
    assert (change.events_from, len(change.events)) == (thread.events - 1, 1)
    assert await digests.changes({"th_missing": None}) == []
