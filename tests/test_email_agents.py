"""Two agents at two mail addresses (``email_addresses``): each mail reaches its agent, whose
answer comes from its own address; a trigger reporting to a mail address writes from it too."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import Registry
from model.ids import thread_id_for
from tests.agents_toml import two_agents
from tests.conftest import Service
from tests.email_helpers import ALICE, EmailHarness, mail

pytest_plugins = ("tests.email_fixtures",)

DEPLOYS = "deploys@sb.test"
ROLLBACKS = "rollbacks@sb.test"
ONCALL = "oncall@example.com"
TRIGGER = f"""
[triggers.alert]
agent = "rollbackbot"
message = "{{{{ summary }}}}"
token = "t0k3n"
report_to = ["email:{ONCALL}", "rest:ops"]
"""


@pytest.fixture
def email_registry(tmp_path: Path) -> Registry:
    senders = f'email_senders = ["{ALICE}"]'
    return two_agents(
        tmp_path,
        f'email_addresses = ["{DEPLOYS}"]\n{senders}',
        f'email_addresses = ["{ROLLBACKS}"]\n{senders}',
        extra=TRIGGER,
    )


async def test_each_address_reaches_its_agent_which_answers_from_it(
    email: EmailHarness, email_service: Service
) -> None:
    for n, (address, agent) in enumerate(((DEPLOYS, "deploybot"), (ROLLBACKS, "rollbackbot"))):
        await email.send(mail("hello", to=address, message_id=f"m{n}@example.com"))
        tid = thread_id_for("email", f"m{n}@example.com")
        view = await email_service.settled(tid, "awaiting_human")
        assert view.meta.agent == agent
        answer = await email.capture.next()
        assert answer.rcpt_tos == [ALICE]
        assert answer.mail_from == address
        assert "What would you like me to do?" in answer.text


async def test_a_trigger_reports_by_mail_from_its_agents_address(
    email: EmailHarness, email_service: Service
) -> None:
    r = await email_service.api.post(
        "/v1/triggers/alert", json={"summary": "hello"}, headers={"Authorization": "Bearer t0k3n"}
    )
    assert r.status_code == 202, r.text
    tid = r.json()["thread_id"]
    view = await email_service.settled(tid, "awaiting_human")
    question = await email.capture.next()
    assert question.rcpt_tos == [ONCALL]
    assert question.mail_from == ROLLBACKS
    assert "What would you like me to do?" in question.text
    # The rest of report_to gets the same message.
    assert [o.item.to.target for o in view.outbox] == [f"email:{ONCALL}", "rest:ops"]
