"""Edit-then-approve over REST, end to end: only ``editable`` fields change, the edited values
pass the tool's model, the edited call runs, and the audit keeps the original."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from agent import config
from agent.config import Registry
from agent.llm import OpenAILLM
from agent.reducer import Idle, RunApproved, plan
from model.events import ApprovalRequest, Approved, ToolResult, arguments_hash
from tests.conftest import ROOT, Service

POLICY = """
[agents.deploybot.tools.deploy.approval]
editable = ["env"]
"""


def policy_registry(tmp_path: Path, policy: str) -> Registry:
    """The sample configuration, with an approval policy on deploy."""
    text = (ROOT / "switchboard.toml").read_text()
    text = text.replace('approvers = ["rest:*"]', 'approvers = ["rest:*"]\n' + policy)
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    return config.load(path)


@pytest.fixture
async def edits(
    tmp_path: Path, service_factory: Callable[..., Awaitable[Service]], llm: OpenAILLM
) -> Service:
    return await service_factory(llm, reg=policy_registry(tmp_path, POLICY))


async def pending_request(service: Service, message: str) -> tuple[str, str]:
    r = await service.api.post("/v1/threads", json={"message": message, "sender": "alice"})
    tid = r.json()["thread_id"]
    view = await service.settled(tid, "awaiting_human")
    [pending] = view.requests
    return tid, pending.request.request_id


async def test_an_edited_call_runs_and_the_audit_keeps_the_original(edits: Service) -> None:
    tid, rid = await pending_request(edits, "deploy v1.2.3 to production")
    assert (await edits.api.get(f"/v1/requests/{rid}")).json()["request"]["editable"] == ["env"]
    body = {"decision": "approve", "arguments": {"env": "staging"}, "responder": "ops"}
    r = await edits.api.post(f"/v1/requests/{rid}", json=body)
    assert r.status_code == 200, r.text
    view = await edits.settled(tid, "done")

    [approved] = [e for e in view.events if isinstance(e, Approved)]
    edited = {"tag": "v1.2.3", "env": "staging"}
    assert approved.arguments == edited
    assert approved.arguments_hash == arguments_hash(edited)
    [result] = [e for e in view.events if isinstance(e, ToolResult)]
    assert result.output.endswith("Output: deployed v1.2.3 to staging")
    assert "ops changed the call before approving it: env='staging' (you asked 'production')" in (
        result.output
    )

    entries = (await edits.api.get(f"/v1/threads/{tid}/audit")).json()
    assert [e["kind"] for e in entries] == ["requested", "approved", "edited", "ran"]
    edit = entries[2]
    assert edit["before"] == {"tag": "v1.2.3", "env": "production"}
    assert edit["after"] == edited
    assert (edit["channel"], edit["responder"]) == ("rest", "ops")
    assert entries[1]["arguments_hash"] == arguments_hash(edited)
    assert entries[0]["arguments_hash"] == arguments_hash({"tag": "v1.2.3", "env": "production"})


@pytest.mark.parametrize(
    ("arguments", "status", "detail"),
    [
        ({"tag": "v9.9.9"}, 403, "tag may not be changed (editable: env)"),
        ({"env": "moon"}, 422, "env"),
        ({"region": "eu"}, 403, "region may not be changed"),
    ],
)
async def test_a_refused_edit_decides_nothing(
    edits: Service, arguments: dict[str, str], status: int, detail: str
) -> None:
    tid, rid = await pending_request(edits, "deploy v1.2.3 to production")
    body = {"decision": "approve", "arguments": arguments}
    r = await edits.api.post(f"/v1/requests/{rid}", json=body)
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]
    assert (await edits.store.request(rid)).status == "pending"
    view = await edits.store.thread(tid)
    assert not [e for e in view.events + view.inbox if isinstance(e, Approved)]


async def test_an_edit_that_changes_nothing_is_a_plain_approval(edits: Service) -> None:
    tid, rid = await pending_request(edits, "deploy v1.2.3 to production")
    body = {"decision": "approve", "arguments": {"env": "production", "tag": "v1.2.3"}}
    assert (await edits.api.post(f"/v1/requests/{rid}", json=body)).status_code == 200
    view = await edits.settled(tid, "done")
    [approved] = [e for e in view.events if isinstance(e, Approved)]
    assert approved.arguments is None
    assert [e.output for e in view.events if isinstance(e, ToolResult)] == [
        "deployed v1.2.3 to production"
    ]


async def test_a_tool_without_editable_fields_refuses_any_edit(service: Service) -> None:
    _tid, rid = await pending_request(service, "deploy v1.2.3 to production")
    body = {"decision": "approve", "arguments": {"env": "staging"}}
    r = await service.api.post(f"/v1/requests/{rid}", json=body)
    assert r.status_code == 403, r.text
    assert "editable: none" in r.json()["detail"]


def test_plan_runs_an_edit_only_inside_editable() -> None:
    request = ApprovalRequest(
        request_id="rq1",
        text="t",
        tool="deploy",
        arguments={"tag": "v1", "env": "production"},
        call_id="c1",
        editable=["env"],
    )

    def edit(**arguments: str) -> Approved:
        return Approved(
            request_id="rq1",
            channel="rest",
            responder="ops",
            arguments=arguments,
            arguments_hash=arguments_hash(arguments),
        )

    good = edit(tag="v1", env="staging")
    action = plan([request, good], {}, "rest:alice")
    assert action == RunApproved(request, good)
    assert isinstance(action, RunApproved)
    assert action.by == ("rest:ops",)
    assert plan([request, edit(tag="v2", env="production")], {}, "rest:alice") == Idle()
    forged = good.model_copy(update={"arguments_hash": arguments_hash(request.arguments)})
    assert plan([request, forged], {}, "rest:alice") == Idle()


async def test_with_a_quorum_only_the_completing_approval_may_edit(
    tmp_path: Path, service_factory: Callable[..., Awaitable[Service]], llm: OpenAILLM
) -> None:
    service = await service_factory(llm, reg=policy_registry(tmp_path, POLICY + "quorum = 2\n"))
    tid, rid = await pending_request(service, "deploy v1.2.3 to production")
    url = f"/v1/requests/{rid}"
    edit = {"decision": "approve", "arguments": {"env": "staging"}}
    r = await service.api.post(url, json={**edit, "responder": "ops"})
    assert r.status_code == 409, r.text
    assert "only from the approval that completes" in r.json()["detail"]
    assert (await service.store.request(rid)).approvals_given == 0

    r = await service.api.post(url, json={"decision": "approve", "responder": "ops"})
    assert r.status_code == 200, r.text
    r = await service.api.post(url, json={**edit, "responder": "ops"})
    assert r.status_code == 409, r.text  # counted already: a second say is no edit
    r = await service.api.post(url, json={**edit, "responder": "oncall"})
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    assert next(e.output for e in view.events if isinstance(e, ToolResult)).endswith(
        "deployed v1.2.3 to staging"
    )


async def test_a_stranger_is_refused_before_the_edit_is_looked_at(
    tmp_path: Path, service_factory: Callable[..., Awaitable[Service]], llm: OpenAILLM
) -> None:
    text = (ROOT / "switchboard.toml").read_text()
    text = text.replace('approvers = ["rest:*"]', 'approvers = ["rest:ops"]\n' + POLICY)
    (tmp_path / "ops.toml").write_text(text)
    service = await service_factory(llm, reg=config.load(tmp_path / "ops.toml"))
    _tid, rid = await pending_request(service, "deploy v1.2.3 to production")
    body = {"decision": "approve", "arguments": {"env": "moon"}}
    r = await service.api.post(f"/v1/requests/{rid}", json={**body, "responder": "mallory"})
    assert r.status_code == 403, r.text
    assert "rest:mallory may not answer" in r.json()["detail"]
    r = await service.api.post(f"/v1/requests/{rid}", json={**body, "responder": "ops"})
    assert r.status_code == 422, r.text
    assert (await service.store.request(rid)).status == "pending"
