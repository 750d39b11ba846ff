"""The Slack channel in the real service process: switched on by the environment through the
channel registry, reached over real HTTP, talking to the fake Slack Web API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack, Posted
from tests.process import ServiceProcess, service_process
from tests.slack.kit import ALICE, GENERAL, SECRET, SlackKit, mention


@pytest.fixture
def slack_service(
    tmp_path: Path, fake_llm: FakeOpenAI, fake_slack: FakeSlack
) -> Iterator[ServiceProcess]:
    config = (ROOT / "switchboard.toml").read_text()
    config = config.replace('approvers = ["rest:*"]', f'approvers = ["slack:{ALICE}"]')
    env = {
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "test-key",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_slack.api_url,
    }
    # Started from another directory: prompts and config must not depend on the cwd.
    with service_process(tmp_path, env, config=config, cwd=tmp_path) as service:
        yield service
    assert "channels on: rest, slack" in service.log()


@pytest.fixture
async def served(slack_service: ServiceProcess, fake_slack: FakeSlack) -> AsyncIterator[SlackKit]:
    async with httpx.AsyncClient(base_url=slack_service.base) as http:
        yield SlackKit(fake_slack, None, http)


async def _posted(fake: FakeSlack, root: str, count: int) -> list[Posted]:
    deadline = time.monotonic() + 15
    while len(posted := fake.thread(GENERAL, root)) < count:
        assert time.monotonic() < deadline, posted
        await asyncio.sleep(0.05)
    return posted


async def test_the_service_process_talks_slack(served: SlackKit) -> None:
    root = served.fake.next_ts()
    r = await served.event(mention("deploy v1.2.3 to staging", root))
    assert r.status_code == 200, r.text
    [approval] = await _posted(served.fake, root, 1)
    [_, reject] = [e for b in approval.blocks if b["type"] == "actions" for e in b["elements"]]
    rid = reject["value"]

    r = await served.click(ALICE, "sb_approve", rid, GENERAL, approval.ts, root)
    assert r.status_code == 200
    final = (await _posted(served.fake, root, 2))[-1]
    assert final.text == "Done: deployed v1.2.3 to staging"
    deadline = time.monotonic() + 15
    while not (updated := served.fake.messages[(GENERAL, approval.ts)]).updates:
        assert time.monotonic() < deadline, "the approval message was never updated"
        await asyncio.sleep(0.05)
    assert updated.text.startswith("Approved by <@U0ALICE>")
