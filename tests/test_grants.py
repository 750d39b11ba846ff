"""Grants over REST, end to end: "approve for this thread" covers later calls of the tool on
that thread, each recorded, and never another thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from agent.llm import OpenAILLM
from agent.reducer import Decide, RunGranted, plan
from model.events import (
    AgentStep,
    ApprovalRequest,
    Approved,
    Granted,
    GrantUsed,
    ToolResult,
    arguments_hash,
)
from store import keys
from store.errors import QuorumIncomplete
from tests.conftest import Service
from tests.test_edit import pending_request, policy_registry

POLICY = """
[agents.deploybot.tools.deploy.approval]
grants = ["thread"]
"""


@pytest.fixture
async def granting(
    tmp_path: Path, service_factory: Callable[..., Awaitable[Service]], llm: OpenAILLM
) -> Service:
    return await service_factory(llm, reg=policy_registry(tmp_path, POLICY))


async def test_a_grant_covers_later_calls_on_its_thread_only(granting: Service) -> None:
    tid, rid = await pending_request(granting, "deploy v1.2.3 to production")
    assert (await granting.api.get(f"/v1/requests/{rid}")).json()["request"]["grants"] == ["thread"]
    body = {"decision": "approve", "grant": "thread", "responder": "ops"}
    r = await granting.api.post(f"/v1/requests/{rid}", json=body)
    assert r.status_code == 200, r.text
    await granting.settled(tid, "done")

    r = await granting.api.post(
        f"/v1/threads/{tid}/messages", json={"message": "deploy v1.2.4 to production"}
    )
    assert r.status_code == 202, r.text
    view = await granting.settled(tid, "done")
    assert len([e for e in view.events if isinstance(e, ApprovalRequest)]) == 1  # not asked
    [granted] = [e for e in view.events if isinstance(e, Granted)]
    assert (granted.tool, granted.scope, granted.by, granted.request_id) == (
        "deploy",
        "thread",
        ["rest:ops"],
        rid,
    )
    [used] = [e for e in view.events if isinstance(e, GrantUsed)]
    assert used.request_id == rid
    assert used.arguments_hash == arguments_hash({"tag": "v1.2.4", "env": "production"})
    assert [e.output for e in view.events if isinstance(e, ToolResult)] == [
        "deployed v1.2.3 to production",
        "deployed v1.2.4 to production",
    ]
    entries = (await granting.api.get(f"/v1/threads/{tid}/audit")).json()
    assert [e["kind"] for e in entries] == [
        "requested", "approved", "granted", "ran", "covered", "ran",
    ]  # fmt: skip
    assert entries[4]["by"] == ["rest:ops"]
    assert "covered by the grant of" in entries[4]["detail"]

    # Another thread: the grant does not cross over.
    other, _ = await pending_request(granting, "deploy v1.2.4 to production")
    view = await granting.store.thread(other)
    assert not [e for e in view.events if isinstance(e, GrantUsed)]
    assert view.state.status == "awaiting_human"


async def test_a_grant_the_tool_does_not_offer_is_refused(service: Service) -> None:
    _tid, rid = await pending_request(service, "deploy v1.2.3 to production")
    r = await service.api.post(
        f"/v1/requests/{rid}", json={"decision": "approve", "grant": "thread"}
    )
    assert r.status_code == 422, r.text
    assert "no grants" in r.json()["detail"]
    assert (await service.store.request(rid)).status == "pending"
    r = await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve", "grant": "all"})
    assert r.status_code == 422
    assert (await service.store.request(rid)).status == "pending"


async def test_with_a_quorum_a_grant_needs_the_completing_approval(
    tmp_path: Path, service_factory: Callable[..., Awaitable[Service]], llm: OpenAILLM
) -> None:
    service = await service_factory(llm, reg=policy_registry(tmp_path, POLICY + "quorum = 2\n"))
    tid, rid = await pending_request(service, "deploy v1.2.3 to production")
    url = f"/v1/requests/{rid}"
    grant = {"decision": "approve", "grant": "thread"}
    r = await service.api.post(url, json={**grant, "responder": "ops"})
    assert r.status_code == 409, r.text
    # A refused message leaves no trace: the same provider message id may decide later.
    early = Approved(request_id=rid, channel="rest", responder="ops", grant="thread")
    with pytest.raises(QuorumIncomplete):
        await service.store.answer(rid, early, dedupe="SM-one")
    assert not await service.store.redis.sismember(keys.seen(tid), "SM-one")
    r = await service.api.post(url, json={"decision": "approve", "responder": "ops"})
    assert r.status_code == 200, r.text
    r = await service.api.post(url, json={**grant, "responder": "oncall"})
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    [granted] = [e for e in view.events if isinstance(e, Granted)]
    assert granted.by == ["rest:ops", "rest:oncall"]


def test_plan_runs_a_covered_call_whose_run_stopped_before_it_ran() -> None:
    step = AgentStep(intent="deploy", arguments={"env": "staging"}, prompt="p", call_id="c2")
    used = GrantUsed(call_id="c2", tool="deploy", request_id="rq1", by=["ops"], arguments_hash="h")
    assert plan([step, used], {}, "rest:alice") == RunGranted(used, step)
    done = ToolResult(call_id="c2", tool="deploy", output="deployed")
    assert plan([step, used, done], {}, "rest:alice") == Decide()
    assert plan([step, used], {"c2": "started"}, "rest:alice") != RunGranted(used, step)
