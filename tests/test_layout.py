"""A thread stored in a previous layout (its meta naming its own id, its origin in JSON,
its outbox items in the outbox hash; its request whole, its offer's claim deadline in a
field of its own) still loads, runs to the end and reads back whole."""

from __future__ import annotations

import json

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


async def test_a_request_and_offer_in_the_previous_form_are_answered_and_read_back_whole(
    service: Service,
) -> None:
    """As the previous version stored them: the request with its text, its creation time in
    ISO 8601 and its hash inside (not last), the offer's settled claim with a dead deadline
    field beside its status."""
    r = await service.api.post("/v1/threads", json={"message": "deploy v1.2.3 to production"})
    tid = str(r.json()["thread_id"])
    view = await service.settled(tid, "awaiting_human")
    redis = service.store.redis
    (asked,) = view.requests
    record = asked.request
    rid = record.request_id
    before = record.model_dump(
        mode="json", exclude_defaults=True, exclude={"request_id", "thread_id"}
    )
    before["created"] = record.created.isoformat().replace("+00:00", "Z")
    fields = list(before)
    assert fields.index("text") < fields.index("arguments_hash") < fields.index("requester")
    old = json.dumps(before, separators=(",", ":")).encode()
    (offer,) = view.outbox
    await redis.hset(keys.requests(tid), rid, old)
    await redis.hset(keys.outbox(tid), keys.outbox_field(offer.item.outbox_id, "c"), "")
    assert (await service.store.thread(tid)).requests == view.requests

    r = await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    done = await service.settled(tid, "done")
    assert await redis.hget(keys.requests(tid), rid) == old  # not its form: kept as it was
    (answered,) = done.requests
    assert (answered.request, answered.status) == (record, "answered")
    assert [(o.item.kind, o.status) for o in done.outbox] == [
        ("approval", "sent"),
        ("final", "sent"),
    ]
    assert done.outbox[0].item == offer.item
    shown = (await service.api.get(f"/v1/requests/{rid}")).json()
    assert shown["request"]["text"] == record.text
    assert shown["request"]["arguments_hash"] == record.arguments_hash
