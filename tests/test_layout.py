"""A thread stored in the previous layout (its meta naming its own id, its origin in JSON,
its outbox items in the outbox hash) still loads, runs to the end and reads back whole."""

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
    # As the previous version wrote them: the id in the meta, the origin in JSON, the item
    # (offered already) in the outbox hash at its id.
    origin = view.meta.origin.model_dump_json(exclude_defaults=True)
    await redis.hset(keys.meta(tid), mapping={"thread_id": tid, "origin": origin})
    (offer,) = view.outbox
    oid = offer.item.outbox_id
    body = await redis.hget(keys.requests(tid), keys.outbox_body(oid))
    assert body is not None
    await redis.hdel(keys.requests(tid), keys.outbox_body(oid))
    await redis.hset(keys.outbox(tid), oid, body)
    assert (await service.store.thread(tid)).outbox == [offer]
    rid = view.requests[0].request.request_id

    r = await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    assert (view.meta.thread_id, view.meta.origin.address) == (tid, "alice")
    assert [(o.item.kind, o.status) for o in view.outbox] == [
        ("approval", "sent"),
        ("final", "sent"),
    ]
    assert view.outbox[0] == offer
    assert isinstance(view.events[-1], FinalAnswer)
    (request,) = view.requests
    assert isinstance(request.response, Approved)
    assert (request.status, request.approvals_given) == ("answered", 1)
    shown = (await service.api.get(f"/v1/requests/{rid}")).json()
    assert shown["response"]["type"] == "approved"
    assert (await service.api.get(f"/v1/threads/{tid}")).json()["meta"]["thread_id"] == tid
