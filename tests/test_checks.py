"""``main.py check`` and ``check --live`` as a user runs them, against every part faked on
loopback: Redis, the model server, Slack's Web API, an SMTP relay and Twilio's API."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack
from tests.fakes.smtp_capture import CaptureServer
from tests.fakes.twilio_server import FakeTwilio
from tests.process import clean_env

SID, TOKEN = "AC" + "7" * 32, "twilio-secret"


@pytest.fixture
async def everything(redis_url: str, fake_llm: FakeOpenAI) -> AsyncIterator[dict[str, str]]:
    slack, twilio, relay = FakeSlack(), FakeTwilio(SID, TOKEN), CaptureServer()
    slack.server.start()
    twilio.server.start()
    await relay.start()
    yield {
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "test-key",
        "SWITCHBOARD_MODEL": "fake-model",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "slack-secret",
        "SLACK_API_URL": slack.api_url,
        "EMAIL_DOMAIN": "agents.test",
        "SMTP_RELAY_URL": f"smtp://127.0.0.1:{relay.port}",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM_NUMBER": "+15550001111",
        "TWILIO_API_URL": twilio.url,
        "PUBLIC_BASE_URL": "https://sb.example.com",
        "SWITCHBOARD_API_TOKENS": "ops:tok-ops-123",
    }
    await relay.stop()
    twilio.server.stop()
    slack.server.stop()


async def _check(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, str]]:
    """Run ``main.py check``; its exit code and each part's row."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "main.py"),
        "check",
        *args,
        cwd=tmp_path,
        env={**clean_env(), "SWITCHBOARD_CONFIG": str(ROOT / "switchboard.toml"), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert not err, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].split() == ["part", "setting", "state", "detail"], out.decode()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert process.returncode is not None
    return process.returncode, rows


def _state(row: str) -> str:
    return row.split()[2]


async def test_check_lists_every_part_without_reaching_any(
    tmp_path: Path, everything: dict[str, str]
) -> None:
    code, rows = await _check(tmp_path, {**everything, "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert code == 0
    assert list(rows) == ["config", "api", "redis", "model", "pages", "slack", "email", "sms"]
    assert {k: _state(v) for k, v in rows.items()} == {
        "config": "ok",
        "api": "ok",
        "redis": "on",
        "model": "on",
        "pages": "ok",
        "slack": "on",
        "email": "on",
        "sms": "on",
    }
    assert "named tokens: ops" in rows["api"]
    assert "tok-ops-123" not in "".join(rows.values())


async def test_check_live_reaches_every_part(tmp_path: Path, everything: dict[str, str]) -> None:
    code, rows = await _check(tmp_path, everything, "--live")
    assert code == 0, rows
    assert {k: _state(v) for k, v in rows.items()} == dict.fromkeys(rows, "ok")
    assert "Redis" in rows["redis"]
    assert "answers" in rows["redis"]
    assert "fake-model offered" in rows["model"]
    assert "bot switchboard in team Switchboard Test" in rows["slack"]
    assert "answers EHLO" in rows["email"]
    assert "account Switchboard test is active" in rows["sms"]


async def test_check_live_fails_when_a_part_does_not_answer(
    tmp_path: Path, everything: dict[str, str]
) -> None:
    broken = {
        **everything,
        "SLACK_BOT_TOKEN": "xoxb-revoked",
        "TWILIO_AUTH_TOKEN": "wrong",
        "SWITCHBOARD_MODEL": "no-such-model",
    }
    code, rows = await _check(tmp_path, broken, "--live")
    assert code == 1
    assert {k: _state(v) for k, v in rows.items() if _state(v) == "FAIL"} == {
        "model": "FAIL",
        "slack": "FAIL",
        "sms": "FAIL",
    }
    assert "invalid_auth" in rows["slack"]
    assert "no-such-model" in rows["model"]
    assert "HTTP 401" in rows["sms"]
