"""Two agents in one Slack workspace, each claiming its own channel (``slack_channels``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import Registry
from tests.agents_toml import two_agents
from tests.conftest import Service
from tests.slack.kit import ALICE, GENERAL, SlackKit, mention, thread_of

DEPLOYS = "C0DEPLOYS"
ROLLBACKS = "C0ROLLBACKS"


@pytest.fixture
def slack_registry(tmp_path: Path) -> Registry:
    return two_agents(
        tmp_path,
        f'slack_channels = ["{DEPLOYS}"]',
        f'slack_channels = ["{ROLLBACKS}"]',
        approvers=(f"slack:{ALICE}",),
    )


async def _asked_in(kit: SlackKit, service: Service, channel: str) -> tuple[str, str]:
    """A mention in ``channel``: the agent of its thread, and the channel it answered in."""
    root = kit.fake.next_ts()
    event = {**mention("hello", root), "channel": channel}
    r = await kit.event(event)
    assert r.status_code == 200, r.text
    tid = thread_of(channel, root)
    view = await service.settled(tid, "awaiting_human")
    [answer] = kit.fake.thread(channel, root)
    assert answer.text == "What would you like me to do?"
    return view.meta.agent, answer.channel


async def test_each_channel_reaches_its_own_agent_which_answers_there(
    slack_kit: SlackKit, slack_service: Service
) -> None:
    assert await _asked_in(slack_kit, slack_service, DEPLOYS) == ("deploybot", DEPLOYS)
    assert await _asked_in(slack_kit, slack_service, ROLLBACKS) == ("rollbackbot", ROLLBACKS)
    # A channel no agent claims goes to the fallback: SLACK_AGENT, else the default agent.
    assert await _asked_in(slack_kit, slack_service, GENERAL) == ("deploybot", GENERAL)
