"""The service as a user runs it, with email on: a real process, SMTP in, SMTP out, a link."""

from __future__ import annotations

import queue
import smtplib
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from store.embedded import free_port
from tests.email_helpers import AGENT, ALICE, REGISTRY_TOML, mail
from tests.fakes.openai_server import FakeOpenAI
from tests.process import service_process


class _Inbox:
    """A capturing relay in its own thread (the test itself is synchronous)."""

    def __init__(self) -> None:
        self.mails: queue.Queue[EmailMessage] = queue.Queue()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.mails.put(msg)
        return "250 OK"

    def next(self) -> EmailMessage:
        return self.mails.get(timeout=20)


@pytest.fixture
def relay() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def service(
    tmp_path: Path, fake_llm: FakeOpenAI, relay: tuple[_Inbox, int]
) -> Iterator[tuple[str, int]]:
    http_port, smtp_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    env = {
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "test-key",
        "SWITCHBOARD_MODEL": "fake-model",
        "PUBLIC_BASE_URL": base,
        "EMAIL_DOMAIN": "sb.test",
        "SMTP_LISTEN": f"127.0.0.1:{smtp_port}",
        "SMTP_RELAY_URL": f"smtp://127.0.0.1:{relay[1]}",
    }
    with service_process(
        tmp_path,
        env,
        config=REGISTRY_TOML,
        port=http_port,
        ready=lambda s: "SMTP server listening" in s.log(),
    ) as running:
        yield base, smtp_port
    assert "channels on: rest, email" in running.log()


def test_deploy_by_mail_approved_by_link(
    service: tuple[str, int], relay: tuple[_Inbox, int]
) -> None:
    base, smtp_port = service
    inbox = relay[0]
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
        client.send_message(mail("please deploy v1.2.3 to production"))

    approval = inbox.next()
    assert approval["To"] == ALICE
    assert approval["In-Reply-To"] == "<m1@example.com>"
    body = approval.get_body(preferencelist=("plain",))
    assert body is not None
    [link] = [
        line.split(": ", 1)[1]
        for line in str(body.get_content()).splitlines()
        if line.startswith("Approve: ")
    ]
    assert link.startswith(f"{base}/email/approve/")
    assert httpx.get(link).status_code == 200
    assert httpx.post(link).status_code == 200

    final = inbox.next()
    assert final["In-Reply-To"] == "<m1@example.com>"
    assert approval["Message-ID"] in str(final["References"])
    final_body = final.get_body(preferencelist=("plain",))
    assert final_body is not None
    assert "deployed v1.2.3 to production" in str(final_body.get_content())
    assert final["From"].addresses[0].addr_spec == AGENT
