"""Withdrawal reaches Slack: a new message while an approval is pending takes the buttons
off its message ("Withdrawn: the request changed"), a later click hears "no longer pending",
and the model is asked again (a late click on a decided request: tests/slack/test_approvals)."""

from __future__ import annotations

from model.events import ToolResult
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step
from tests.fakes.slack_server import Posted
from tests.slack.kit import ALICE, GENERAL, SlackKit, mention, thread_of


def _buttons(message: Posted) -> list[str]:
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def _ephemerals(kit: SlackKit, user: str) -> list[str]:
    return [str(c["text"]) for c in kit.fake.called("chat.postEphemeral") if c["user"] == user]


async def test_a_new_message_withdraws_the_approval_message_in_slack(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    fake_llm.script(
        step("deploy", tag="v1.2.3", env="production"),
        step("deploy", tag="v1.2.3", env="staging"),
    )
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("deploy v1.2.3 to production", root))
    tid = thread_of(GENERAL, root)
    view = await slack_service.settled(tid, "awaiting_human")
    [old] = view.requests
    [posted] = slack_kit.fake.thread(GENERAL, root)
    assert _buttons(posted) == ["sb_approve", "sb_reject"]

    reply = {
        "type": "message",
        "channel": GENERAL,
        "channel_type": "channel",
        "user": ALICE,
        "text": "wait, make it staging instead",
        "ts": slack_kit.fake.next_ts(),
        "thread_ts": root,
    }
    assert (await slack_kit.event(reply)).status_code == 200

    def asked_again(v: object) -> bool:
        return len(v.requests) == 2  # type: ignore[attr-defined]

    await slack_service.wait(tid, asked_again)
    view = await slack_service.settled(tid, "awaiting_human")
    assert [r.status for r in view.requests] == ["withdrawn", "pending"]
    # The old message lost its buttons and says why; the new approval has its own.
    updated = slack_kit.fake.messages[(GENERAL, posted.ts)]
    assert updated.updates == 1
    assert _buttons(updated) == []
    assert updated.text == "Withdrawn: the request changed"
    assert "*Withdrawn: the request changed* (nothing was decided)" in str(updated.blocks)
    [withdrawal] = [o for o in view.outbox if o.item.kind == "withdrawn"]
    assert withdrawal.status == "sent"
    newer = slack_kit.fake.thread(GENERAL, root)[-1]
    assert "staging" in newer.text
    assert _buttons(newer) == ["sb_approve", "sb_reject"]

    # A click on the old message (a client that had not refreshed) decides nothing.
    r = await slack_kit.click(ALICE, "sb_approve", old.request.request_id, GENERAL, posted.ts, root)
    assert r.status_code == 200
    await slack_kit.settle()
    assert _ephemerals(slack_kit, ALICE) == [
        "deploy(tag='v1.2.3', env='production') is no longer pending: "
        "it was withdrawn (the request changed)."
    ]
    view = await slack_service.settled(tid, "awaiting_human")
    assert [r.status for r in view.requests] == ["withdrawn", "pending"]
    assert not [e for e in view.events if isinstance(e, ToolResult) and e.outcome == "ok"]
