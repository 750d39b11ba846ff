"""Signed tokens: the reply address ``reply+<token>@domain`` and one-click approval links.

A reply token names the thread (and the request a mail asked about) and carries an HMAC, so
a reply finds its thread without a lookup, and nobody can make up an address that reaches a
thread or a request they were never sent. Tokens are lower case: some mail systems fold the
local part of an address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from channels.email import keys
from channels.shared_key import shared_key
from model.ids import thread_of_request

"""Where the key lives when EMAIL_SECRET is not set (shared by API and worker processes)."""

_ID = re.compile(r"^[a-z0-9_]{1,64}$")
Decision = Literal["approve", "reject"]


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ReplyRef:
    """What a valid reply token points at."""

    thread_id: str
    request_id: str | None = None


@dataclass(frozen=True)
class LinkClaim:
    """What a valid approval link says: who may decide what, until when."""

    request_id: str
    decision: Decision
    approver: str
    expires: int


class Signer:
    """Signs and checks tokens with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\x00".join(parts).encode(), hashlib.sha256).digest()

    # ---- reply addresses ----------------------------------------------------------------
    def reply_token(self, thread_id: str, request_id: str | None = None) -> str:
        mac = _b32(self._mac("reply", thread_id, request_id or "")[:10])
        if request_id and thread_of_request(request_id) == thread_id:
            # The request id names its thread (model.ids): said once, the address stays
            # within the 64 characters of a local part.
            return f"{request_id}.{mac}"
        return ".".join([thread_id, *([request_id] if request_id else []), mac])

    def read_reply_token(self, token: str) -> ReplyRef | None:
        """The thread (and request) of a token, or None if it is malformed or forged."""
        parts = token.lower().split(".")
        if len(parts) not in (2, 3) or not all(_ID.match(p) for p in parts[:-1]):
            return None
        thread_id, request_id = parts[0], (parts[1] if len(parts) == 3 else None)
        named = thread_of_request(thread_id) if len(parts) == 2 else None
        if named is not None:  # thread ids start th_, request ids rq_: no mixing up
            thread_id, request_id = named, parts[0]
        good = _b32(self._mac("reply", thread_id, request_id or "")[:10])
        if not hmac.compare_digest(good, parts[-1]):
            return None
        return ReplyRef(thread_id, request_id)

    # ---- approval links -----------------------------------------------------------------
    def link_token(self, request_id: str, decision: Decision, approver: str, expires: int) -> str:
        body = json.dumps(
            {"r": request_id, "d": decision, "a": approver, "e": expires}, separators=(",", ":")
        ).encode()
        return f"{_b64(body)}.{_b64(self._mac('link', body.decode())[:18])}"

    def read_link_token(self, token: str, now: int) -> LinkClaim | None:
        """The claim of a link, or None if it is malformed, forged or expired."""
        body_text, _, mac_text = token.partition(".")
        try:
            body = _unb64(body_text)
            mac = _unb64(mac_text)
            if not hmac.compare_digest(self._mac("link", body.decode())[:18], mac):
                return None
            raw = json.loads(body)
            claim = LinkClaim(
                request_id=str(raw["r"]),
                decision=raw["d"],
                approver=str(raw["a"]),
                expires=int(raw["e"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if claim.decision not in ("approve", "reject") or claim.expires < now:
            return None
        return claim


class Keyring:
    """The signing key: the configured secret, or one kept in Redis (made once, shared)."""

    def __init__(self, client: aioredis.Redis, secret: str | None) -> None:
        self._redis = client
        self._signer = Signer(secret.encode()) if secret else None

    async def signer(self) -> Signer:
        if self._signer is None:
            self._signer = Signer(await shared_key(self._redis, keys.SECRET, "email"))
        return self._signer
