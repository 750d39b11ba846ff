"""A Slack approval says enough to decide: who asked and what they wrote, the agent, the
approvals given against needed, the deadline, the thread page, and an @-mention of the
people asked; through slack_sdk against the fake Slack."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from agent.config import Registry
from tests.conftest import ROOT, Service
from tests.fakes.openai_server import FakeOpenAI
from tests.slack.kit import ALICE, GENERAL, PUBLIC, SlackKit, mention, thread_of

RM = "U0RELEASE"
DEPLOYS = "C0DEPLOYS"
POLICY = f"""
[agents.deploybot.tools.deploy.approval]
deadline = "4h"
quorum = 2

[people.release-manager]
slack = "{RM}"
sms = "+15551234567"
"""


@pytest.fixture
def slack_registry(tmp_path: Path) -> Registry:
    text = (ROOT / "switchboard.toml").read_text()
    text = text.replace(
        'approvers = ["rest:*"]',
        f'approvers = ["slack:{RM}", "sms:+15551234567", "rest:*"]\nnotify = ["slack:{DEPLOYS}"]',
    )
    path = tmp_path / "switchboard.toml"
    path.write_text(text + POLICY)
    return config.load(path)


async def test_the_approval_in_a_channel_mentions_the_approvers_and_says_what_to_decide(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("please deploy v1.2.3 to production, it is *urgent*", root))
    await slack_service.settled(thread_of(GENERAL, root), "awaiting_human")
    [posted] = slack_kit.fake.thread(DEPLOYS, None)
    # The channel's members see it; the release manager (an approver) is pinged.
    assert posted.text.startswith(f"<@{RM}> Approval needed: deploy(")
    [brief] = [
        b["text"]["text"]
        for b in posted.blocks
        if b["type"] == "section" and "Asked by" in b["text"]["text"]
    ]
    assert f"*Asked by* <@{ALICE}> *in* deploybot" in brief
    # What Alice wrote is quoted as text: her Markdown stays characters, nothing pings.
    assert "> please deploy v1.2.3 to production, it is *urgent*" in brief
    assert "*Approvals:* 0 of 2" in brief
    assert "*Decide by* <!date^" in brief
    assert f"<{PUBLIC}/t/" in brief
    assert f"Asking <@{RM}>" in brief
    # The brief sits between the call and the buttons.
    kinds = [b["type"] for b in posted.blocks]
    assert kinds.index("actions") == kinds.index("section", 1) + 1
    assert slack_kit.fake.thread(GENERAL, root)[0].text.startswith("Waiting for approval")
