"""Edit-then-approve and grants in Slack, end to end through bolt and the fake Web API: the
Edit button opens a modal of the editable arguments, a bad value answers in the modal, the
edited call runs; "Approve for this thread" covers the next call in the same Slack thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from agent import config
from agent.config import Registry
from model.events import ApprovalRequest, Approved, GrantUsed, ToolResult
from tests.conftest import ROOT, Service
from tests.fakes.slack_server import Posted
from tests.slack.kit import ALICE, GENERAL, SlackKit, mention, thread_of

POLICY = """
[agents.deploybot.tools.deploy.approval]
editable = ["env"]
grants = ["thread"]
"""


@pytest.fixture
def slack_registry(tmp_path: Path) -> Registry:
    text = (ROOT / "switchboard.toml").read_text()
    text = text.replace('approvers = ["rest:*"]', f'approvers = ["slack:{ALICE}"]\n' + POLICY)
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    return config.load(path)


async def _waiting(kit: SlackKit, service: Service) -> tuple[str, str, Posted, str]:
    root = kit.fake.next_ts()
    r = await kit.event(mention("please deploy v1.2.3 to production", root))
    assert r.status_code == 200, r.text
    tid = thread_of(GENERAL, root)
    view = await service.settled(tid, "awaiting_human")
    [approval] = kit.fake.thread(GENERAL, root)
    return tid, root, approval, view.requests[0].request.request_id


async def _submit(kit: SlackKit, view: dict[str, Any], values: dict[str, str]) -> httpx.Response:
    """The edit modal ``view`` (as views.open got it), submitted with ``values``."""
    state = {
        f"edit:{field}": {"value": {"type": "plain_text_input", "value": value}}
        for field, value in values.items()
    }
    return await kit.submit_state(ALICE, view, state)


async def test_edit_from_the_modal_runs_the_edited_call(
    slack_kit: SlackKit, slack_service: Service
) -> None:
    service = slack_service
    tid, root, approval, rid = await _waiting(slack_kit, service)
    actions = [e for b in approval.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"]) for e in actions] == [
        ("sb_approve", rid),
        ("sb_approve_thread", rid),
        ("sb_edit", rid),
        ("sb_reject", rid),
    ]

    r = await slack_kit.click(ALICE, "sb_edit", rid, GENERAL, approval.ts, root)
    assert r.status_code == 200, r.text
    await slack_kit.settle()
    [opened] = slack_kit.fake.called("views.open")
    modal = opened["view"]
    assert modal["callback_id"] == "sb_edit_view"
    inputs = [b for b in modal["blocks"] if b["type"] == "input"]
    assert [(b["block_id"], b["element"]["initial_value"]) for b in inputs] == [
        ("edit:env", "production")
    ]
    assert [q.status for q in (await service.store.thread(tid)).requests] == ["pending"]

    bad = await _submit(slack_kit, modal, {"env": "moon"})
    assert bad.status_code == 200
    assert bad.json()["response_action"] == "errors"
    assert "env" in bad.json()["errors"]["edit:env"]
    forged = await _submit(slack_kit, modal, {"env": "staging", "tag": "v9.9.9"})
    assert forged.json()["response_action"] == "errors"
    assert "tag may not be changed" in next(iter(forged.json()["errors"].values()))
    assert [q.status for q in (await service.store.thread(tid)).requests] == ["pending"]

    good = await _submit(slack_kit, modal, {"env": "staging"})
    assert good.status_code == 200, good.text
    assert not good.content or "errors" not in good.json()
    view = await service.settled(tid, "done")
    await slack_kit.settle()
    [approved] = [e for e in view.events if isinstance(e, Approved)]
    assert (approved.responder, approved.arguments) == (ALICE, {"tag": "v1.2.3", "env": "staging"})
    [result] = [e for e in view.events if isinstance(e, ToolResult)]
    assert result.output.endswith("deployed v1.2.3 to staging")
    updated = slack_kit.fake.messages[(GENERAL, approval.ts)]
    assert "edited: env='staging'" in updated.text
    assert not [b for b in updated.blocks if b["type"] == "actions"]

    audit = (await slack_kit.http.get(f"/v1/threads/{tid}/audit")).json()
    [edit] = [e for e in audit if e["kind"] == "edited"]
    assert edit["before"] == {"tag": "v1.2.3", "env": "production"}
    assert edit["after"] == {"tag": "v1.2.3", "env": "staging"}


async def test_approve_for_this_thread_covers_the_next_call_in_the_slack_thread(
    slack_kit: SlackKit, slack_service: Service
) -> None:
    service = slack_service
    tid, root, approval, rid = await _waiting(slack_kit, service)
    r = await slack_kit.click(ALICE, "sb_approve_thread", rid, GENERAL, approval.ts, root)
    assert r.status_code == 200, r.text
    await service.settled(tid, "done")
    await slack_kit.settle()
    assert "for the rest of this thread" in slack_kit.fake.messages[(GENERAL, approval.ts)].text

    reply = slack_kit.fake.next_ts()
    r = await slack_kit.event(mention("now deploy v1.2.4 to production", reply, thread_ts=root))
    assert r.status_code == 200, r.text
    await service.wait(tid, lambda v: len([e for e in v.events if isinstance(e, ToolResult)]) == 2)
    view = await service.settled(tid, "done")
    assert len([e for e in view.events if isinstance(e, ApprovalRequest)]) == 1
    [used] = [e for e in view.events if isinstance(e, GrantUsed)]
    assert (used.request_id, used.by) == (rid, [f"slack:{ALICE}"])
    assert [e.output for e in view.events if isinstance(e, ToolResult)][-1] == (
        "deployed v1.2.4 to production"
    )
