"""The inbound SMTP server, on the service's own event loop.

aiosmtpd's ``Controller`` would run the server in a thread with a loop of its own, and the
Redis client the handler uses belongs to the service's loop: sharing it across loops breaks.
So the protocol class is served with ``loop.create_server`` on the running loop, the way the
controller does it inside its thread, and nothing loop-bound is shared.

The port is bound once (``bind``) and served on that socket (``serve``) by every API process
(channels/registry.py ``SharedListener``): a mail's SMTP work is a millisecond of CPU, more
than one core's worth at a thousand mails a second.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from agent.errors import ConfigError
from channels.email.inbound import Inbound
from telemetry import logs, metrics

log = logging.getLogger("switchboard.email")

# aiosmtpd logs every connection and command at INFO; keep its warnings, unless the operator
# has chosen a level for its logger.
_AIOSMTPD_LOG = logging.getLogger("mail.log")
if _AIOSMTPD_LOG.level == logging.NOTSET:
    _AIOSMTPD_LOG.setLevel(logging.WARNING)


@dataclass(frozen=True)
class Credentials:
    """The one login the server accepts, when AUTH is required (only over TLS)."""

    user: str
    password: str

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and hmac.compare_digest(data.login, self.user.encode())
            and hmac.compare_digest(data.password, self.password.encode())
        )
        return AuthResult(success=ok, handled=False)


class CountedReplies:
    """The SMTP handler, with every refusal (a 4xx or 5xx reply) counted by its code, and
    the log context saying how a mail's decision is trusted."""

    def __init__(self, handler: Inbound) -> None:
        self.handler = handler

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        return _counted(
            await self.handler.handle_RCPT(server, session, envelope, address, rcpt_options)
        )

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with logs.bound(auth="SMTP: Authentication-Results (DKIM/DMARC)"):
            return _counted(await self.handler.handle_DATA(server, session, envelope))


def _counted(reply: str) -> str:
    if reply[:1] in ("4", "5"):
        metrics.INBOUND_REFUSED.labels("email", reply[:3]).inc()
    return reply


class _Smtp(SMTP):
    """aiosmtpd's protocol, reading each address of MAIL FROM and RCPT TO once.

    aiosmtpd parses the argument with the email package's RFC 5322 header parser (and
    declares a class on every call), a fifth of a mail's SMTP work; mail to us comes from
    few addresses. The ``<address>`` part is parsed by aiosmtpd and kept; the parameters
    after it (SIZE=..., which changes from mail to mail) are split off as that parser does.
    Arguments of any other shape (quotes, comments, the null sender) go to aiosmtpd.
    """

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        end = arg.find(">") + 1
        head, tail = arg[:end], arg[end:].lstrip(" \t")
        if end <= 2 or not arg.startswith("<") or _UNUSUAL.search(head) or tail[:1] == "(":
            return super()._getaddr(arg)
        key = (head, self.local_part_limit)
        address = _ADDRESSES.get(key)
        if address is None:
            parsed, rest = super()._getaddr(head)
            if parsed is None or rest != "":
                return super()._getaddr(arg)
            if len(_ADDRESSES) >= _ADDRESSES_KEPT:
                _ADDRESSES.clear()
            _ADDRESSES[key] = address = parsed
        return address, tail


_UNUSUAL = re.compile(r'[\s"\\()]')
"""What the fast path leaves to aiosmtpd: quoting, comments, white space in the address."""
_ADDRESSES: dict[tuple[str, int], str] = {}
_ADDRESSES_KEPT = 4096
"""Addresses remembered at most (then forgotten at once): the senders of a busy hour."""


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
        auth: Credentials | None = None,
    ) -> None:
        if auth is not None and tls is None:
            raise ValueError("SMTP AUTH needs STARTTLS: set SMTP_TLS_CERT and SMTP_TLS_KEY")
        self.handler = handler
        self.host = host
        self.port = port
        self.hostname = hostname
        self.max_bytes = max_bytes
        self.tls = tls
        self.auth = auth
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _protocol(self) -> SMTP:
        return _Smtp(
            CountedReplies(self.handler),
            data_size_limit=self.max_bytes,
            enable_SMTPUTF8=True,
            hostname=self.hostname,
            ident="Switchboard ESMTP",
            tls_context=self.tls,
            require_starttls=self.tls is not None and self.auth is not None,
            authenticator=self.auth,
            auth_required=self.auth is not None,
            auth_require_tls=True,
            loop=self._loop,
        )

    def bind(self) -> socket.socket:
        """The listening socket on ``host:port``, one address as the HTTP port is bound (a
        name is resolved to its first); ``port`` then says which, when 0 asked for any."""
        try:
            family, _, _, _, address = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            sock = socket.create_server(address, family=family, backlog=BACKLOG)
        except OSError as exc:
            raise ConfigError(
                f"SMTP_LISTEN={self.host}:{self.port}: cannot listen there: {exc}"
            ) from exc
        self.port = int(sock.getsockname()[1])
        return sock

    async def start(self, sock: socket.socket | None = None) -> None:
        """Accept mail on ``sock`` (bound elsewhere), or on a socket bound here."""
        loop = self._loop = asyncio.get_running_loop()
        sock = self.bind() if sock is None else sock
        self._server = await loop.create_server(self._protocol, sock=sock)
        self.port = int(sock.getsockname()[1])
        log.info("SMTP server listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def serve(self, sock: socket.socket, stop: asyncio.Event) -> None:
        """The channel's shared listener: serve on ``sock`` until the service stops."""
        await self.start(sock)
        try:
            await stop.wait()
        finally:
            await self.stop()


BACKLOG = 100
"""Connections the kernel queues before one is accepted (asyncio's default)."""


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server context for STARTTLS, when a certificate is configured."""
    if not cert or not key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
