"""Signed links to a thread's read-only page: ``/t/<thread id>?exp=<epoch s>&sig=<mac>``.

The page needs no API token, so the link itself is the credential: an HMAC-SHA256 over the
thread id and the expiry, under a server secret (SWITCHBOARD_PAGE_SECRET, or one made once
and kept in Redis). Stdlib ``hmac`` rather than itsdangerous: the claim is two fields, the
format must stay short enough for a text message, and the check is one ``compare_digest``.
Every channel that sends an approval builds its link here; the REST channel checks it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime
from urllib.parse import urlencode

import redis.asyncio as aioredis

from agent.settings import Settings
from channels import keys
from channels.shared_key import shared_key

PATH = "/t"
MAC_BYTES = 16
"""128 bits of the SHA-256 MAC: unguessable, and 22 characters in a text message."""
_THREAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _mac(key: bytes, thread_id: str, expires: int) -> str:
    digest = hmac.new(key, f"page:{thread_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:MAC_BYTES]).decode().rstrip("=")


class PageLinks:
    """Makes and checks page links; the key is the configured secret or Redis's."""

    def __init__(
        self,
        redis: aioredis.Redis,
        secret: str | None,
        public_base_url: str | None,
        ttl_s: int,
    ) -> None:
        self._redis = redis
        self._key = secret.encode() if secret else None
        self.public = public_base_url.rstrip("/") if public_base_url else None
        self.ttl_s = ttl_s

    async def key(self) -> bytes:
        if self._key is None:
            self._key = await shared_key(self._redis, keys.PAGE_SECRET, "page")
        return self._key

    async def link(self, thread_id: str, since: datetime) -> str | None:
        """The page's URL, valid ``ttl_s`` from ``since`` (a message's creation time, so
        the same message always carries the same link); None without PUBLIC_BASE_URL."""
        if self.public is None:
            return None
        expires = int(since.timestamp()) + self.ttl_s
        query = urlencode({"exp": expires, "sig": _mac(await self.key(), thread_id, expires)})
        return f"{self.public}{PATH}/{thread_id}?{query}"

    async def valid(self, thread_id: str, exp: str | None, sig: str | None, now: float) -> bool:
        """Is this a link we made, for this thread, not yet expired?"""
        if not exp or not sig or not exp.isdigit() or not _THREAD_ID.match(thread_id):
            return False
        expected = _mac(await self.key(), thread_id, int(exp))
        return hmac.compare_digest(expected, sig) and int(exp) > now


def page_links(
    settings: Settings, redis: aioredis.Redis, public_base_url: str | None = None
) -> PageLinks:
    """The links as the service's settings make them (every process the same);
    ``public_base_url`` when a channel was given its own (tests)."""
    secret = settings.switchboard_page_secret
    return PageLinks(
        redis,
        secret.get_secret_value() if secret else None,
        public_base_url or settings.public_base_url,
        settings.switchboard_page_ttl,
    )
