"""A decision binds to a hash of the exact arguments pending: REST end to end."""

from __future__ import annotations

from agent.reducer import Idle, RunApproved, plan
from model.events import ApprovalRequest, Approved, ToolResult, arguments_hash
from tests.conftest import Service


async def test_an_approval_binds_to_the_exact_arguments(service: Service) -> None:
    r = await service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": "alice"}
    )
    tid = r.json()["thread_id"]
    view = await service.settled(tid, "awaiting_human")
    [pending] = view.requests
    record = pending.request
    expected = arguments_hash({"tag": "v1.2.3", "env": "production"})
    assert record.arguments_hash == expected
    url = f"/v1/requests/{record.request_id}"

    # An approval of other arguments (the approver saw an older ask) decides nothing.
    other = arguments_hash({"tag": "v1.2.3", "env": "staging"})
    r = await service.api.post(url, json={"decision": "approve", "arguments_hash": other})
    assert r.status_code == 409, r.text
    assert "other arguments" in r.json()["detail"]
    assert (await service.store.request(record.request_id)).status == "pending"
    r = await service.api.post(url, json={"decision": "approve", "arguments_hash": "x"})
    assert r.status_code == 422

    r = await service.api.post(url, json={"decision": "approve", "arguments_hash": expected})
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    [approved] = [e for e in view.events if isinstance(e, Approved)]
    assert approved.arguments_hash == expected
    assert [e.output for e in view.events if isinstance(e, ToolResult)] == [
        "deployed v1.2.3 to production"
    ]


async def test_an_approval_without_a_hash_is_stamped_with_the_pending_one(
    service: Service,
) -> None:
    r = await service.api.post("/v1/threads", json={"message": "deploy v1.2.3 to staging"})
    tid = r.json()["thread_id"]
    view = await service.settled(tid, "awaiting_human")
    rid = view.requests[0].request.request_id
    r = await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    [approved] = [e for e in view.events if isinstance(e, Approved)]
    assert approved.arguments_hash == arguments_hash({"tag": "v1.2.3", "env": "staging"})


def test_plan_runs_no_call_on_an_approval_of_other_arguments() -> None:
    request = ApprovalRequest(
        request_id="rq1", text="t", tool="deploy", arguments={"env": "production"}, call_id="c1"
    )
    stale = Approved(
        request_id="rq1",
        channel="rest",
        responder="ops",
        arguments_hash=arguments_hash({"env": "staging"}),
    )
    assert plan([request, stale], {}, "rest:alice") == Idle()
    bound = stale.model_copy(update={"arguments_hash": arguments_hash({"env": "production"})})
    assert plan([request, bound], {}, "rest:alice") == RunApproved(request, bound)
