"""A fake Twilio REST API: the Messages resource, in Twilio's wire format.

POST /2010-04-01/Accounts/{AccountSid}/Messages.json with a form body (To, From, Body,
StatusCallback) and HTTP basic auth; answers 201 with the message's JSON, or an error JSON
{code, message, more_info, status}. GET of the same path lists messages, newest first,
filtered by To and From, in Twilio's page format. The real twilio client talks to it over
loopback.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.http_server import BackgroundServer


@dataclass(frozen=True)
class Fail:
    """Answer the next create with this HTTP error (and Twilio error code)."""

    status: int
    code: int
    message: str = "scripted failure"
    retry_after: str | None = None


@dataclass(frozen=True)
class Slow:
    """Accept the next message, but answer only after ``seconds`` (a lost response)."""

    seconds: float


@dataclass(frozen=True)
class Lost:
    """Accept the next message (it goes out), then answer with this HTTP error anyway."""

    status: int = 500
    code: int = 20500
    listed: bool = True
    """False: the message list does not show it yet (Twilio's list lags behind)."""


class FakeTwilio:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._lock = threading.Lock()
        self._script: deque[Fail | Slow | Lost] = deque()
        self.messages: list[dict[str, str]] = []
        """Every accepted message, as the form Twilio received."""
        self.attempts = 0
        app = Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{sid}/Messages.json", self._create, methods=["POST"]),
                Route("/2010-04-01/Accounts/{sid}.json", self._account, methods=["GET"]),
                Route("/2010-04-01/Accounts/{sid}/Messages.json", self._list, methods=["GET"]),
            ]
        )
        self.server = BackgroundServer(app)

    @property
    def url(self) -> str:
        return self.server.url

    def fail(self, *failures: Fail | Slow | Lost) -> None:
        with self._lock:
            self._script.extend(failures)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.messages.clear()
            self.attempts = 0

    def sent_to(self, number: str) -> list[str]:
        with self._lock:
            return [m["Body"] for m in self.messages if m["To"] == number]

    def _error(self, status: int, code: int, message: str, **headers: str) -> JSONResponse:
        return JSONResponse(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status_code=status,
            headers=headers,
        )

    def _refused(self, request: Request) -> JSONResponse | None:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return self._error(401, 20003, "Authenticate")
        if request.path_params["sid"] != self.account_sid:
            return self._error(404, 20404, "The requested resource was not found")
        return None

    async def _account(self, request: Request) -> JSONResponse:
        """GET an account, as ``main.py check --live`` does."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        return JSONResponse(
            {
                "sid": self.account_sid,
                "friendly_name": "Switchboard test",
                "status": "active",
                "type": "Full",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}.json",
            }
        )

    async def _list(self, request: Request) -> JSONResponse:
        refused = self._refused(request)
        if refused is not None:
            return refused
        to, sender = request.query_params.get("To"), request.query_params.get("From")
        size = int(request.query_params.get("PageSize") or 50)
        with self._lock:
            found = [
                m
                for m in reversed(self.messages)
                if (to is None or m["To"] == to)
                and (sender is None or m["From"] == sender)
                and not m.get("Unlisted")
            ]
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return JSONResponse(
            {
                "messages": [self._resource(m["Sid"], m) for m in found[:size]],
                "end": min(size, len(found)) - 1,
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            }
        )

    async def _create(self, request: Request) -> JSONResponse:
        refused = self._refused(request)
        if refused is not None:
            return refused
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        with self._lock:
            self.attempts += 1
            scripted = self._script.popleft() if self._script else None
        if isinstance(scripted, Fail):
            extra = {"Retry-After": scripted.retry_after} if scripted.retry_after else {}
            return self._error(scripted.status, scripted.code, scripted.message, **extra)
        if not form.get("To") or not form.get("Body") or not form.get("From"):
            return self._error(400, 21604, "A 'To' phone number is required.")
        sid = "SM" + secrets.token_hex(16)
        created = format_datetime(datetime.now(UTC), usegmt=False)
        record = {**form, "Sid": sid, "Created": created}
        if isinstance(scripted, Lost) and not scripted.listed:
            record["Unlisted"] = "yes"
        with self._lock:
            self.messages.append(record)
        if isinstance(scripted, Slow):
            await asyncio.sleep(scripted.seconds)
        if isinstance(scripted, Lost):
            return self._error(scripted.status, scripted.code, "Internal Server Error")
        return JSONResponse(self._resource(sid, record), status_code=201)

    def _resource(self, sid: str, form: dict[str, str]) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": form["Created"],
            "date_sent": None,
            "date_updated": form["Created"],
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form["From"],
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": form["To"],
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
