"""The service as a user runs it, with SMS configured from the environment: a real process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.twilio_server import FakeTwilio
from tests.process import ServiceProcess, poll, service_process
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
) -> Iterator[ServiceProcess]:
    env = {
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "test-key",
        "PUBLIC_BASE_URL": PUBLIC,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM_NUMBER": OURS,
        "TWILIO_API_URL": fake_twilio.url,
    }
    with service_process(tmp_path, env, config=_CONFIG) as service:
        yield service


def test_run_command_with_sms(running: ServiceProcess, fake_twilio: FakeTwilio) -> None:
    base = running.base
    r = httpx.post(f"{base}/v1/threads", json={"message": "deploy v1.2.3 to production"})
    tid = r.json()["thread_id"]
    poll(lambda: fake_twilio.sent_to(APPROVER))

    form = {"MessageSid": "SM" + "e" * 32, "From": APPROVER, "To": OURS, "Body": "YES"}
    signature = sign(f"{PUBLIC}/twilio/sms", form)
    r = httpx.post(f"{base}/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
    assert r.status_code == 200
    assert "Approved" in r.text

    def done() -> Any:
        body = httpx.get(f"{base}/v1/threads/{tid}").json()
        return body if body["state"]["status"] == "done" else None

    thread = poll(done)
    assert thread["events"][-1]["text"] == "Done: deployed v1.2.3"
    assert "channels on: rest, sms" in running.log()
