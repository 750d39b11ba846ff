"""The audit trail over REST, read from the thread's events."""

from __future__ import annotations

from model.events import arguments_hash
from tests.conftest import Service


async def test_a_thread_audit_shows_request_decision_and_run(service: Service) -> None:
    r = await service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": "alice"}
    )
    tid = r.json()["thread_id"]
    view = await service.settled(tid, "awaiting_human")
    rid = view.requests[0].request.request_id
    r = await service.api.post(
        f"/v1/requests/{rid}", json={"decision": "approve", "responder": "ops"}
    )
    assert r.status_code == 200, r.text
    await service.settled(tid, "done")

    r = await service.api.get(f"/v1/threads/{tid}/audit")
    assert r.status_code == 200, r.text
    entries = r.json()
    assert [e["kind"] for e in entries] == ["requested", "approved", "ran"]
    requested, approved, ran = entries
    expected = arguments_hash({"tag": "v1.2.3", "env": "production"})
    assert requested["arguments_hash"] == approved["arguments_hash"] == expected
    assert (approved["channel"], approved["responder"]) == ("rest", "ops")
    assert ran["detail"] == "deployed v1.2.3 to production"
    assert all(e["request_id"] == rid for e in entries)

    everywhere = (await service.api.get("/v1/audit", params={"person": "ops"})).json()
    assert [e["kind"] for e in everywhere] == ["approved"]
    by_request = (await service.api.get("/v1/audit", params={"request": rid})).json()
    assert by_request == entries
    later = (await service.api.get("/v1/audit", params={"since": "2999-01-01T00:00:00Z"})).json()
    assert later == []
    r = await service.api.get("/v1/threads/th_nope/audit")
    assert r.status_code == 404
