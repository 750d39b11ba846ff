"""Who may mail an agent when its configuration does not say: only its tools' approvers."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from agent import config
from agent.config import Registry
from store.threads import ThreadStore
from tests.email_helpers import ALICE, BOB, REGISTRY_TOML, EmailHarness, mail

pytest_plugins = ("tests.email_fixtures",)


@pytest.fixture
def email_registry(tmp_path: Path) -> Registry:
    """The test agent without an ``email_senders`` setting; Alice approves deploys."""
    toml = REGISTRY_TOML.replace(
        'settings = { email_senders = ["alice@example.com", "@example.com"] }\n', ""
    )
    assert "email_senders" not in toml
    path = tmp_path / "switchboard.toml"
    path.write_text(toml)
    return config.load(path)


async def test_a_stranger_is_refused_when_no_senders_are_configured(
    email: EmailHarness, store: ThreadStore
) -> None:
    with pytest.raises(smtplib.SMTPDataError) as caught:
        await email.send(mail("deploy v1.2.3 to production", sender=BOB))
    assert caught.value.smtp_code == 550
    assert await store.thread_ids() == []


async def test_an_approver_may_write(email: EmailHarness, store: ThreadStore) -> None:
    await email.send(mail("deploy v1.2.3 to production", sender=ALICE))
    assert len(await store.thread_ids()) == 1
