"""A capturing SMTP server (aiosmtpd) on the test's loop: our outbound mail lands here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP


@dataclass(frozen=True)
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return str(body.get_content()) if body is not None else ""

    @property
    def html(self) -> str:
        body = self.message.get_body(preferencelist=("html",))
        return str(body.get_content()) if body is not None else ""

    def header(self, name: str) -> str:
        return str(self.message.get(name, ""))


class CaptureServer:
    def __init__(self) -> None:
        self.received: asyncio.Queue[Captured] = asyncio.Queue()
        self.refuse: str | None = None
        """Answer DATA with this (e.g. '451 4.3.0 busy') instead of accepting."""
        self.port = 0
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse is not None:
            return self.refuse
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        await self.received.put(Captured(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="capture.test", loop=loop), "127.0.0.1", 0
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def next(self, within: float = 10) -> Captured:
        return await asyncio.wait_for(self.received.get(), within)
