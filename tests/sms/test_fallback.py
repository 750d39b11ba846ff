"""Rerouting an approval off an unreachable phone survives a crash and a busy thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from channels.sms import keys
from channels.sms.fallback import Fallback, Reroute
from model.records import Origin
from tests.sms.conftest import APPROVER, Sms, approval_to

Factory = Callable[..., Awaitable[Sms]]
PHONE = Origin(channel="sms", address=APPROVER)


async def _waiting(sms: Sms) -> tuple[str, str]:
    r = await sms.service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": "alice"}
    )
    tid = str(r.json()["thread_id"])
    view = await sms.service.settled(tid, "awaiting_human")
    return tid, view.requests[0].request.request_id


async def test_sweeper_finishes_a_reroute_left_by_a_crash(sms_factory: Factory) -> None:
    sms = await sms_factory()
    tid, rid = await _waiting(sms)
    # As if the process died right after recording the reroute.
    await sms.store.redis.zadd(keys.REROUTES, {Reroute(rid, PHONE, "phone lost").dump(): 0})

    fallback = Fallback(sms.store, patience=1)
    assert await fallback.sweep_once() == 1
    view = await sms.service.wait(tid, approval_to("rest"))
    assert "phone lost" in view.outbox[-1].item.text
    assert await sms.store.redis.zcard(keys.REROUTES) == 0
    # A second job for the same request (a racing sweeper, another phone) sends nothing more.
    assert await fallback.reroute(rid, PHONE, "twice")
    await sms.service.settled(tid, "awaiting_human")
    rest = [o for o in (await sms.store.thread(tid)).outbox if o.item.to.channel == "rest"]
    assert [o.item.kind for o in rest] == ["notice", "approval"]
    # Once the request is answered, a stale job has nothing left to do and is dropped.
    await sms.store.redis.zadd(keys.REROUTES, {Reroute(rid, PHONE, "again").dump(): 0})
    await sms.service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    await sms.service.settled(tid, "done")
    assert await fallback.sweep_once() == 1
    assert await sms.store.redis.zcard(keys.REROUTES) == 0
    assert len([o for o in (await sms.store.thread(tid)).outbox if o.item.kind == "approval"]) == 2


async def test_a_busy_thread_is_rerouted_later(sms_factory: Factory) -> None:
    sms = await sms_factory()
    tid, rid = await _waiting(sms)
    worker = await sms.store.acquire(tid, "another-worker", 60_000)
    assert worker is not None

    fallback = Fallback(sms.store, patience=0.2, sweep_every=0)
    await fallback.soon(rid, PHONE, "phone lost")
    await fallback.idle()  # the attempt gave up: the thread stayed busy
    assert await sms.store.redis.zcard(keys.REROUTES) == 1

    await sms.store.commit(worker, ttl_ms=1000, release=True)
    assert await fallback.sweep_once(now_ms=2**62) == 1
    await sms.service.wait(tid, approval_to("rest"))
    assert await sms.store.redis.zcard(keys.REROUTES) == 0
