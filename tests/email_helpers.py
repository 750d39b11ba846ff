"""Helpers of the email tests: addresses, a mail builder, the harness the fixtures hand out."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiosmtplib

from agent import config
from agent.config import Registry
from channels.email import EmailParts
from channels.registry import Services
from tests.fakes.smtp_capture import Captured, CaptureServer

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


def bounce(of: Captured, recipient: str = ALICE) -> bytes:
    """A delivery status notification (RFC 3464) for one of our mails, as an MTA writes it."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        f"To: {AGENT}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce1@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 mailbox unavailable\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {of.header('From')}\r\nTo: {recipient}\r\nSubject: {of.header('Subject')}\r\n"
        f"Message-ID: {of.header('Message-ID')}\r\n"
        "\r\n--B--\r\n"
    ).encode()


def approved_by_bob(tmp_path: Path, also: str = "") -> Registry:
    """The example registry with deploys approved by Bob (and ``also``), and asked of him."""
    extra = f", {also}" if also else ""
    toml = REGISTRY_TOML.replace(
        f'approvers = ["email:{ALICE}", "rest:*"]',
        f'approvers = ["email:{BOB}"{extra}]\nnotify = ["email:{BOB}"]',
    )
    assert toml != REGISTRY_TOML
    path = tmp_path / "switchboard.toml"
    path.write_text(toml)
    return config.load(path)


def reply_to(captured: Any, body: str, message_id: str, **headers: str) -> object:
    """Alice's answer to one of our mails, threaded as her mail client would."""
    references = f"{captured.header('References')} {captured.header('Message-ID')}".strip()
    return mail(
        body,
        to=captured.header("Reply-To"),
        subject=f"Re: {captured.header('Subject').removeprefix('Re: ')}",
        message_id=message_id,
        headers={
            "In-Reply-To": captured.header("Message-ID"),
            "References": references,
            **headers,
        },
    )
