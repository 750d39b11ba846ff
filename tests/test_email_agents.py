"""Two agents at two mail addresses (``email_addresses``): each mail reaches its agent, whose
answer comes from its own address."""

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


@pytest.fixture
def email_registry(tmp_path: Path) -> Registry:
    senders = f'email_senders = ["{ALICE}"]'
    return two_agents(
        tmp_path,
        f'email_addresses = ["{DEPLOYS}"]\n{senders}',
        f'email_addresses = ["{ROLLBACKS}"]\n{senders}',
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
