"""The service as a user runs it, with SMS configured from the environment: a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from store.embedded import free_port
from tests.conftest import ROOT
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.twilio_server import FakeTwilio
from tests.sms.conftest import ACCOUNT, APPROVER, OURS, PUBLIC, TOKEN, sign

_CONFIG = f"""
default_agent = "deploybot"
[agents.deploybot]
module = "agent.examples.deploybot"
prompt = "deploybot/v1"
[agents.deploybot.tools.list_tags]
command = ["{{python}}", "-c", "print('v1.2.3')"]
[agents.deploybot.tools.deploy]
command = ["{{python}}", "-c", "import sys; print('deployed', sys.argv[1])", "{{tag}}"]
approvers = ["sms:{APPROVER}"]
notify = ["sms:{APPROVER}"]
[agents.deploybot.tools.rollback]
command = ["{{python}}", "-c", "print('rolled back')"]
"""


@pytest.fixture
def running(
    tmp_path: Path, fake_llm: FakeOpenAI, fake_twilio: FakeTwilio
) -> Iterator[tuple[str, Path]]:
    port = free_port()
    (tmp_path / "switchboard.toml").write_text(_CONFIG)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "SWITCHBOARD_", "OPENAI_", "TWILIO_", "PUBLIC_"))
    }
    env.update(
        PORT=str(port),
        SWITCHBOARD_DATA_DIR=str(tmp_path / "data"),
        SWITCHBOARD_CONFIG=str(tmp_path / "switchboard.toml"),
        OPENAI_BASE_URL=fake_llm.base_url,
        OPENAI_API_KEY="test-key",
        PUBLIC_BASE_URL=PUBLIC,
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_FROM_NUMBER=OURS,
        TWILIO_API_URL=fake_twilio.url,
    )
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "main.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _poll(lambda: httpx.get(f"{base}/healthz").status_code == 200, process, log_path)
        yield base, log_path
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _poll(
    check: Any, process: subprocess.Popen[bytes] | None = None, log: Path | None = None
) -> Any:
    deadline = time.monotonic() + 20
    while True:
        try:
            result = check()
        except httpx.TransportError:
            result = None
        if result:
            return result
        if process is not None and log is not None:
            assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def test_run_command_with_sms(running: tuple[str, Path], fake_twilio: FakeTwilio) -> None:
    base, log = running
    r = httpx.post(f"{base}/v1/threads", json={"message": "deploy v1.2.3 to production"})
    tid = r.json()["thread_id"]
    _poll(lambda: fake_twilio.sent_to(APPROVER))

    form = {"MessageSid": "SM" + "e" * 32, "From": APPROVER, "To": OURS, "Body": "YES"}
    signature = sign(f"{PUBLIC}/twilio/sms", form)
    r = httpx.post(f"{base}/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
    assert r.status_code == 200
    assert "Approved" in r.text

    def done() -> Any:
        body = httpx.get(f"{base}/v1/threads/{tid}").json()
        return body if body["state"]["status"] == "done" else None

    thread = _poll(done)
    assert thread["events"][-1]["text"] == "Done: deployed v1.2.3"
    assert "channels on: rest, sms" in log.read_text()
