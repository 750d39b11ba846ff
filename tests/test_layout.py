"""A thread stored in the previous layout (its meta naming its own id, its answer kept
beside its request) still loads, runs to the end and reads back whole."""

from __future__ import annotations

from model.events import Approved, FinalAnswer
from store import keys
from tests.conftest import Service


async def test_a_thread_paused_in_the_previous_layout_is_approved_and_finishes(
    service: Service,
) -> None:
    r = await service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": "alice"}
    )
    tid = str(r.json()["thread_id"])
    view = await service.settled(tid, "awaiting_human")
    redis = service.store.redis
    assert await redis.hget(keys.meta(tid), "thread_id") is None  # the key names it
    await redis.hset(keys.meta(tid), "thread_id", tid)  # as the previous version wrote it
    rid = view.requests[0].request.request_id

    r = await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    assert view.meta.thread_id == tid
    assert [o.item.kind for o in view.outbox] == ["approval", "final"]
    assert isinstance(view.events[-1], FinalAnswer)
    (request,) = view.requests
    assert isinstance(request.response, Approved)
    assert (request.status, request.approvals_given) == ("answered", 1)
    shown = (await service.api.get(f"/v1/requests/{rid}")).json()
    assert shown["response"]["type"] == "approved"
    assert (await service.api.get(f"/v1/threads/{tid}")).json()["meta"]["thread_id"] == tid
