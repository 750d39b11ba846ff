"""The inbound SMTP server, on the service's own event loop.

aiosmtpd's ``Controller`` would run the server in a thread with a loop of its own, and the
Redis client the handler uses belongs to the service's loop: sharing it across loops breaks.
So the protocol class is served with ``loop.create_server`` on the running loop, the way the
controller does it inside its thread, and nothing loop-bound is shared.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiosmtpd.smtp import SMTP

from channels.email.inbound import Inbound

log = logging.getLogger("switchboard.email")


class SmtpServer:
    """Listens on ``host:port`` (port 0: any free port, see ``port`` after ``start``)."""

    def __init__(
        self,
        handler: Inbound,
        host: str,
        port: int,
        *,
        hostname: str,
        max_bytes: int,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.hostname = hostname
        self.max_bytes = max_bytes
        self.tls = tls
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _protocol(self) -> SMTP:
        return SMTP(
            self.handler,
            data_size_limit=self.max_bytes,
            enable_SMTPUTF8=True,
            hostname=self.hostname,
            ident="Switchboard ESMTP",
            tls_context=self.tls,
            loop=self._loop,
        )

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("SMTP server listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def run(self, stop: asyncio.Event) -> None:
        """The channel's listener: serve until the service stops."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server context for STARTTLS, when a certificate is configured."""
    if not cert or not key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
