"""Issue 14's on-call example end to end, as switchboard.toml ships it (uncommented): a
signed alert starts oncall (a forged one starts nothing), which investigates with its
read-only MCP tools at once and hands the rollback to rollbacker; rollbacker's rollback is
approved by a button in the alert's Slack channel and runs once; its answer resumes oncall,
whose final answer reaches that channel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from agent.config import Registry
from channels.rest.triggers import signature
from model.events import (
    ApprovalRequest,
    FinalAnswer,
    ToolError,
    ToolResult,
    ToolStarted,
    UserMessage,
)
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step
from tests.slack.kit import SlackKit
from tests.test_oncall import load_shipped

CHANNEL = "C0123ONCALL"  # report_to of [triggers.alert]
ENGINEER = "U0123ONCALL"  # an approver of rollbacker's rollback
SECRET = "alert-secret-0123456789"
ALERT = {"alert": {"id": "a-42", "title": "5xx above 2%", "service": "checkout"}}
WHY = "errors began three minutes after v2.4.1 was deployed"


@pytest.fixture
async def slack_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Registry]:
    monkeypatch.setenv("ONCALL_ALERT_SECRET", SECRET)
    registry, box = await load_shipped(tmp_path / "switchboard.toml")
    yield registry
    await box.close()


async def _alert(kit: SlackKit, secret: str = SECRET) -> httpx.Response:
    body = json.dumps(ALERT).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature(secret, body)}
    return await kit.http.post("/v1/triggers/alert", content=body, headers=headers)


async def test_an_alert_is_investigated_then_rolled_back_by_rollbacker_once_approved(
    slack_kit: SlackKit,
    slack_service: Service,
    fake_llm: FakeOpenAI,
    redis_client: aioredis.Redis,
) -> None:
    service = slack_service
    before = sorted(await redis_client.keys("sb:*"))
    r = await _alert(slack_kit, secret="forged")
    assert (r.status_code, r.json()["detail"]) == (401, "missing or wrong X-Hub-Signature-256")
    assert sorted(await redis_client.keys("sb:*")) == before

    fake_llm.script(
        step("recent_errors", service="checkout", minutes=None),  # oncall
        step("get_deploys", service="checkout"),
        step("rollback", service="checkout", to_version="v2.4.0", reason=WHY),  # the handoff
        step("rollback", service="checkout", to_version="v2.4.0"),  # rollbacker asks
        step("done_for_now", message="Rolled checkout back from v2.4.1 to v2.4.0."),
        step("done_for_now", message="checkout failed after v2.4.1; it runs v2.4.0 again."),
    )
    r = await _alert(slack_kit)
    assert r.status_code == 202, r.text
    tid = str(r.json()["thread_id"])
    assert (await _alert(slack_kit)).json() == {"thread_id": tid, "duplicate": True}

    # oncall read at once, then handed the rollback over and waits.
    parent = await service.settled(tid, "waiting")
    [alert] = [e for e in parent.events if isinstance(e, UserMessage)]
    assert (alert.channel, alert.text) == ("trigger", "Alert a-42: 5xx above 2% on checkout")
    outputs = [e.output for e in parent.events if isinstance(e, ToolResult)]
    assert "KeyError 'currency'" in outputs[0]
    assert outputs[1].startswith("v2.4.1 deployed 14:02 UTC")
    assert not [e for e in parent.events if isinstance(e, ApprovalRequest)]
    [started] = [e for e in parent.events if isinstance(e, ToolStarted)]
    assert (started.tool, started.agent) == ("rollback", "rollbacker")

    # rollbacker asks in the alert's channel, mentioning the approvers; the text comes later.
    child = await service.settled(started.external_id, "awaiting_human")
    [handed] = [e for e in child.events if isinstance(e, UserMessage)]
    assert handed.text == f"Roll checkout back to v2.4.0. Why: {WHY}"
    [asked] = [e for e in child.events if isinstance(e, ApprovalRequest)]
    assert [(s.notify, s.after) for s in asked.stages] == [
        ([f"slack:{CHANNEL}"], 0),
        (["sms:+15551234567"], 600),
    ]
    [approval] = slack_kit.fake.thread(CHANNEL, None)
    assert approval.text.splitlines() == [
        f"<@{ENGINEER}> Approval needed: rollback(service='checkout', to_version='v2.4.0')",
        "MCP server ops says: not read-only, destructive (hints from the server, not verified).",
    ]
    assert not [e for e in child.events if isinstance(e, ToolResult)]  # nothing ran yet

    r = await slack_kit.click(
        ENGINEER, "sb_approve", asked.request_id, CHANNEL, approval.ts, approval.ts
    )
    assert r.status_code == 200, r.text
    kid = await service.settled(started.external_id, "done")
    parent = await service.settled(tid, "done")
    await slack_kit.settle()

    assert [e.output for e in kid.events if isinstance(e, ToolResult)] == [
        "rolled checkout back from v2.4.1 to v2.4.0"
    ]
    assert not [e for e in [*kid.events, *parent.events] if isinstance(e, ToolError)]
    [result] = [e for e in parent.events if isinstance(e, ToolResult) and e.tool == "rollback"]
    assert result.output == "Rolled checkout back from v2.4.1 to v2.4.0."
    final = [e for e in parent.events if isinstance(e, FinalAnswer)][-1]
    # The channel saw the approval and oncall's answer; rollbacker's answer went to oncall.
    posted = slack_kit.fake.thread(CHANNEL, None)
    assert [p.text for p in posted] == [approval.text, final.text]
    assert final.text == "checkout failed after v2.4.1; it runs v2.4.0 again."
