"""An async HTTP client for the official twilio library, on httpx.

twilio's own async client (aiohttp) binds its session at construction and has no way to
point it elsewhere; the library's HttpClient interface is its documented extension point.
This one rewrites https://api.twilio.com to TWILIO_API_URL when set (tests, proxies), and
keeps each response's Retry-After where the sender can read it: twilio's exceptions drop it.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from twilio.http import AsyncHttpClient
from twilio.http.response import Response

last_retry_after: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "twilio_last_retry_after", default=None
)
"""Retry-After of the last response in this task (each outbox delivery runs in its own)."""


class HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]
    def __init__(self, *, base_url: str | None = None, timeout: float = 15.0) -> None:
        super().__init__(logging.getLogger("switchboard.sms.http"), True, timeout)
        self.base = urlsplit(base_url) if base_url else None
        self.client = httpx.AsyncClient(timeout=timeout)

    def _target(self, url: str) -> str:
        if self.base is None:
            return url
        parts = urlsplit(url)
        path = self.base.path.rstrip("/") + parts.path
        return urlunsplit((self.base.scheme, self.base.netloc, path, parts.query, ""))

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's HttpClient signature
        allow_redirects: bool = False,
    ) -> Any:
        response = await self.client.request(
            method.upper(),
            self._target(url),
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout or self.timeout,
            follow_redirects=allow_redirects,
        )
        last_retry_after.set(response.headers.get("retry-after"))
        return Response(response.status_code, response.text, response.headers)

    async def close(self) -> None:
        await self.client.aclose()
