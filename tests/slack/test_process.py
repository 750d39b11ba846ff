"""The Slack channel in the real service process: switched on by the environment through the
channel registry, reached over real HTTP, talking to the fake Slack Web API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from store.embedded import free_port
from tests.conftest import ROOT
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack, Posted
from tests.slack.kit import ALICE, GENERAL, SECRET, SlackKit, mention


@pytest.fixture
async def served(
    tmp_path: Path, fake_llm: FakeOpenAI, fake_slack: FakeSlack
) -> AsyncIterator[SlackKit]:
    config = (ROOT / "switchboard.toml").read_text()
    config = config.replace('approvers = ["rest:*"]', f'approvers = ["slack:{ALICE}"]')
    (tmp_path / "switchboard.toml").write_text(config)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "SWITCHBOARD_"))}
    env.update(
        PORT=str(port),
        SWITCHBOARD_DATA_DIR=str(tmp_path / "data"),
        SWITCHBOARD_CONFIG=str(tmp_path / "switchboard.toml"),
        OPENAI_BASE_URL=fake_llm.base_url,
        OPENAI_API_KEY="test-key",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake_slack.api_url,
    )
    env.pop("SLACK_APP_TOKEN", None)
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "main.py"),
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, log_path.read_text()
                assert time.monotonic() < deadline, "service did not start"
                await asyncio.sleep(0.1)
            yield SlackKit(fake_slack, None, http)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)
    assert "channels on: rest, slack" in log_path.read_text()


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
