"""What the ingest benchmark sends each inbound channel, byte for byte, and how the API is set up
to take it: the channels' settings, an agent config that lets the senders in, a fake Slack API.

Every message is distinct (its own Slack ts and event_id, Twilio MessageSid, Message-ID), so
nothing is deduplicated and every acknowledged message must be found in the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlencode

import uvloop
from twilio.request_validator import RequestValidator

from bench.workload import MESSAGE

# Settings of the service under load (nothing here is a real credential).
SLACK_TOKEN = "xoxb-bench"
SLACK_SECRET = "bench-signing-secret-0123456789ab"
SLACK_TEAM = "T0BENCH"
SLACK_BOT = "U0BOT"
TWILIO_SID = "AC" + "b" * 32
TWILIO_TOKEN = "bench-auth-token-0123456789abcdef"
OUR_NUMBER = "+15005550006"
PUBLIC = "https://switchboard.bench.invalid"
"""PUBLIC_BASE_URL: what Twilio signs over; never contacted."""
EMAIL_DOMAIN = "bench.invalid"
MAIL_FROM = "alice@example.com"
RCPT_TO = f"deploybot@{EMAIL_DOMAIN}"
SMS_PATH = "/twilio/sms"
SMS_SENDERS = 100
"""Texts come from this many numbers in turn, each number's texts one thread."""

_TWILIO = RequestValidator(TWILIO_TOKEN)


@dataclass(frozen=True)
class IngestTarget:
    name: str
    protocol: Literal["http", "smtp"]
    request: Callable[[int, int], bytes]
    """(n, port) -> message n: a raw HTTP/1.1 request, or the DATA of a mail."""
    ack: int
    """The status (HTTP) or reply code (SMTP, after DATA) that acknowledges a stored message."""


def _post(port: int, path: str, content_type: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{head}\r\n"
    ).encode() + body


def rest(n: int, port: int) -> bytes:
    body = json.dumps({"message": MESSAGE, "sender": f"load-{n}"}).encode()
    return _post(port, "/v1/threads", "application/json", body, {})


def slack(n: int, port: int) -> bytes:
    """An Events API callback, signed (v0) at send time: a mention in a channel (even n) or a
    direct message (odd n); each starts its own thread."""
    ts = f"{1_700_000_000 + n // 1_000_000}.{n % 1_000_000:06d}"
    event: dict[str, object] = {"user": "U0ALICE", "ts": ts, "event_ts": ts}
    if n % 2:
        event |= {"type": "message", "channel": "D0ALICE", "channel_type": "im", "text": MESSAGE}
    else:
        event |= {
            "type": "app_mention",
            "channel": "C0GENERAL",
            "text": f"<@{SLACK_BOT}> {MESSAGE}",
        }
    body = json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": SLACK_TEAM,
            "api_app_id": "A0BENCH",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{n:010d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": SLACK_TEAM, "user_id": SLACK_BOT, "is_bot": True}],
        }
    ).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(SLACK_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest.hexdigest()}"}
    return _post(port, "/slack/events", "application/json", body, headers)


def twilio(n: int, port: int) -> bytes:
    """Twilio's messaging webhook for a text, signed over PUBLIC_BASE_URL + path."""
    form = {
        "MessageSid": f"SM{n:032x}",
        "SmsSid": f"SM{n:032x}",
        "AccountSid": TWILIO_SID,
        "From": f"+1555{n % SMS_SENDERS:07d}",
        "To": OUR_NUMBER,
        "Body": MESSAGE,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    signature = str(_TWILIO.compute_signature(PUBLIC + SMS_PATH, form))
    body = urlencode(form).encode()
    return _post(
        port, SMS_PATH, "application/x-www-form-urlencoded", body, {"X-Twilio-Signature": signature}
    )


def mail(n: int, port: int) -> bytes:
    """The DATA of a new mail to the agent (dot-stuffing is not needed: no line starts with
    a dot)."""
    return (
        f"From: Alice <{MAIL_FROM}>\r\nTo: {RCPT_TO}\r\nSubject: Deploy please\r\n"
        f"Date: {formatdate()}\r\nMessage-ID: <bench-{n}@example.com>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{MESSAGE}\r\n"
    ).encode()


TARGETS: dict[str, IngestTarget] = {
    t.name: t
    for t in (
        IngestTarget("rest", "http", rest, 201),
        IngestTarget("slack", "http", slack, 200),
        IngestTarget("twilio", "http", twilio, 200),
        IngestTarget("smtp", "smtp", mail, 250),
    )
}


# ---- the service's side -----------------------------------------------------------------
def config(base: Path) -> str:
    """The repository's switchboard.toml, plus who may write to the agent by SMS and mail."""
    return (
        base.read_text()
        + '\n[agents.deploybot.settings]\nsms_senders = ["*"]\nemail_senders = ["@example.com"]\n'
    )


def service_env(slack_api_url: str, smtp_port: int) -> dict[str, str]:
    """Every inbound channel on: Slack over HTTP, SMS, email (receive only)."""
    return {
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "SLACK_API_URL": slack_api_url,
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM_NUMBER": OUR_NUMBER,
        "TWILIO_API_URL": "http://127.0.0.1:9",  # the API process sends nothing
        "PUBLIC_BASE_URL": PUBLIC,
        "EMAIL_DOMAIN": EMAIL_DOMAIN,
        "SMTP_LISTEN": f"127.0.0.1:{smtp_port}",
    }


def _answer(body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


_OK = _answer({"ok": True})
_AUTH_TEST = _answer(
    {
        "ok": True,
        "user_id": SLACK_BOT,
        "bot_id": "B0BOT",
        "team_id": SLACK_TEAM,
        "user": "deploybot",
        "team": "bench",
        "url": "https://bench.slack.com/",
    }
)
_MAX_HEAD = 64 * 1024


class _SlackApi(asyncio.Protocol):
    """Slack's Web API as far as the API process needs it: bolt's auth.test; ok to the rest.

    HTTP/1.1 with keep-alive, as Slack's API is (a client that reuses its connections is
    measured so), parsed by hand on an event loop of its own thread: at 1,000 calls a second
    http.server's parsing in Python and its thread per connection took about a fifth of
    what the API's own processes spent, on the same cores, a cost a remote Slack never puts
    on the machine under test. A reply goes out as one write, with TCP_NODELAY, so none
    waits for the client's delayed ACK (Slack's servers make no one wait).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: no subclass of it
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            request = _request(self.buffer)
            if request is None:
                if len(self.buffer) > _MAX_HEAD:
                    self.transport.close()  # no head in sight: not HTTP
                return
            target, close, used = request
            del self.buffer[:used]
            # The path alone: slack_sdk sends auth.test's arguments (bolt's team_id) in the
            # query.
            path = target.split(b"?", 1)[0].rstrip(b"/")
            self.transport.write(_AUTH_TEST if path.endswith(b"auth.test") else _OK)
            if close:
                self.transport.close()
                self.transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _request(buffer: bytearray) -> tuple[bytes, bool, int] | None:
    """The first whole request in ``buffer``: (its target, whether the client closes after
    it, its length in bytes), or None until it has all arrived."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).split(b"\r\n")
    _, target, version = [*lines[0].split(b" ", 2), b"", b""][:3]
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    close = fields.get(b"connection") == b"close" or (
        version != b"HTTP/1.1" and fields.get(b"connection") != b"keep-alive"
    )
    at = end + 4
    if fields.get(b"transfer-encoding") == b"chunked":
        while True:  # chunks: a hex size line, the data, CRLF; a 0 size ends them
            eol = buffer.find(b"\r\n", at)
            if eol < 0:
                return None
            size = int(bytes(buffer[at:eol]).split(b";", 1)[0], 16)
            at = eol + 2 + size + 2
            if at > len(buffer):
                return None
            if size == 0:
                return target, close, at
    at += int(fields.get(b"content-length") or 0)
    return (target, close, at) if at <= len(buffer) else None


@contextmanager
def fake_slack_api() -> Iterator[str]:
    """A local Slack Web API, on its own thread's event loop; yields its base URL."""
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    loop = uvloop.new_event_loop()
    server = loop.run_until_complete(loop.create_server(_SlackApi, sock=listening))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/api/"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
