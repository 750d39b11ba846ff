"""A handoff started from Slack: the child agent's approval request is posted in the parent's
Slack thread, Alice approves it there, and the child's answer resumes the parent."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from agent.config import Registry
from model.events import Answered, FinalAnswer, ToolResult, ToolStarted, UserMessage
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step
from tests.slack.kit import ALICE, GENERAL, SlackKit, mention, thread_of
from tests.test_handoff import agents_toml


@pytest.fixture
def slack_registry(tmp_path: Path) -> Registry:
    """deploybot hands rollbacks to rollbackbot, whose rollback Alice must approve."""
    rollback = (
        'command = ["{python}", "-c", "print(\'rolled back production\')"]\n'
        f'needs_approval = true\napprovers = ["slack:{ALICE}"]'
    )
    path = tmp_path / "switchboard.toml"
    path.write_text(agents_toml(child_rollback=rollback))
    return config.load(path)


async def test_the_childs_approval_is_asked_in_the_parents_slack_thread(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    fake_llm.script(
        step("rollback", env="production"),  # deploybot hands off
        step("rollback", env="production"),  # rollbackbot asks to roll back
        step("done_for_now", message="Rolled production back."),  # rollbackbot, after it ran
        step("done_for_now", message="Production is rolled back."),  # deploybot
    )
    root = slack_kit.fake.next_ts()
    r = await slack_kit.event(mention("production is broken: roll it back", root))
    assert r.status_code == 200, r.text
    tid = thread_of(GENERAL, root)
    parent = await service.settled(tid, "waiting")
    [started] = [e for e in parent.events if isinstance(e, ToolStarted)]
    child = await service.settled(started.external_id, "awaiting_human")

    # The child's approval sits in the parent's Slack thread.
    [approval] = slack_kit.fake.thread(GENERAL, root)
    assert approval.text == "<@U0ALICE> Approval needed: rollback(env='production')"
    [request] = child.requests
    rid = request.request.request_id
    assert request.request.thread_id == started.external_id

    r = await slack_kit.click(ALICE, "sb_approve", rid, GENERAL, approval.ts, root)
    assert r.status_code == 200, r.text
    kid = await service.settled(started.external_id, "done")
    parent = await service.settled(tid, "done")
    await slack_kit.settle()

    assert [e.output for e in kid.events if isinstance(e, ToolResult)] == ["rolled back production"]
    [result] = [e for e in parent.events if isinstance(e, ToolResult)]
    assert (result.call_id, result.output) == (started.call_id, "Rolled production back.")
    final = [e for e in parent.events if isinstance(e, FinalAnswer)][-1]
    posted = slack_kit.fake.thread(GENERAL, root)
    # The approval, then the parent's answer; the child's answer went to the parent only.
    assert [p.text for p in posted] == [approval.text, final.text]
    assert final.text == "Production is rolled back."


async def test_a_reply_in_the_parents_slack_thread_answers_the_childs_question(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    fake_llm.script(
        step("rollback", env="production"),  # deploybot hands off
        step("request_more_information", message="Back to v1.2.2 or v1.2.1?"),  # rollbackbot
        step("done_for_now", message="Rolled back to v1.2.1."),  # rollbackbot
        step("done_for_now", message="Production runs v1.2.1 again."),  # deploybot
    )
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("roll production back", root))
    tid = thread_of(GENERAL, root)
    parent = await service.settled(tid, "waiting")
    [started] = [e for e in parent.events if isinstance(e, ToolStarted)]
    await service.settled(started.external_id, "awaiting_human")
    assert [p.text for p in slack_kit.fake.thread(GENERAL, root)] == ["Back to v1.2.2 or v1.2.1?"]

    answer = mention("v1.2.1", slack_kit.fake.next_ts(), thread_ts=root)
    assert (await slack_kit.event({**answer, "type": "message"})).status_code == 200
    kid = await service.settled(started.external_id, "done")
    parent = await service.settled(tid, "done")

    assert [a.answer for a in kid.events if isinstance(a, Answered)] == ["v1.2.1"]
    assert not [e for e in parent.events if isinstance(e, UserMessage)][1:]  # not the parent's
    assert [e.output for e in parent.events if isinstance(e, ToolResult)] == [
        "Rolled back to v1.2.1."
    ]
    assert [p.text for p in slack_kit.fake.thread(GENERAL, root)][-1] == (
        "Production runs v1.2.1 again."
    )
