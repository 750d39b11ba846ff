"""Helpers of the email tests: addresses, a mail builder, the harness the fixtures hand out."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib

from agent.config import Registry
from channels.email import EmailParts
from channels.registry import Services
from tests.fakes.smtp_capture import CaptureServer

DOMAIN = "sb.test"
AGENT = f"deploybot@{DOMAIN}"
ALICE = "alice@example.com"
BOB = "bob@example.com"
MALLORY = "mallory@evil.test"
TRUSTED = "mx.sb.test"
PUBLIC = "https://switchboard.example"

REGISTRY_TOML = f"""
default_agent = "deploybot"

[agents.deploybot]
module = "agent.examples.deploybot"
prompt = "deploybot/v1"
settings = {{ email_senders = ["{ALICE}", "@example.com"] }}

[agents.deploybot.tools.list_tags]
command = ["{{python}}", "-c", "print('v1.2.3')"]

[agents.deploybot.tools.deploy]
command = ["{{python}}", "-c", "import sys; print('deployed', sys.argv[1], 'to', sys.argv[2])",
           "{{tag}}", "{{env}}"]
approvers = ["email:{ALICE}", "rest:*"]

[agents.deploybot.tools.rollback]
command = ["{{python}}", "-c", "print('rolled back')"]
"""


def mail(
    body: str,
    *,
    sender: str = ALICE,
    to: str = AGENT,
    subject: str = "Deploy please",
    message_id: str | None = "m1@example.com",
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Alice <{sender}>" if sender == ALICE else sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate()
    if message_id:
        msg["Message-ID"] = f"<{message_id}>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def passed(domain: str = "example.com", authserv: str = TRUSTED) -> str:
    """An Authentication-Results header as our receiving edge would add it."""
    return f"{authserv}; dkim=pass header.d={domain} header.s=sel; dmarc=pass header.from={domain}"


@dataclass
class EmailHarness:
    parts: EmailParts
    capture: CaptureServer
    registry: Registry
    services: Services

    @property
    def port(self) -> int:
        return self.parts.server.port

    async def send(self, msg: EmailMessage, *, envelope_from: str | None = None) -> Any:
        """Deliver with smtplib (blocking, so in a thread: our server runs on this loop)."""

        def go() -> Any:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
                return client.send_message(msg, from_addr=envelope_from)

        return await asyncio.to_thread(go)

    async def asend(self, msg: EmailMessage | bytes, sender: str, to: list[str]) -> Any:
        """Deliver with aiosmtplib."""
        return await aiosmtplib.send(
            msg, sender=sender, recipients=to, hostname="127.0.0.1", port=self.port
        )

    async def token(self, thread_id: str, request_id: str | None = None) -> str:
        signer = await self.parts.keyring.signer()
        return f"reply+{signer.reply_token(thread_id, request_id)}@{DOMAIN}"
