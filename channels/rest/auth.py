"""Who may call the API, checked before a request's body is read.

- **Tokens.** ``SWITCHBOARD_API_TOKEN`` is one shared bearer token; its holder acts as
  ``api``. ``SWITCHBOARD_API_TOKENS`` (``ops:<token>,oncall:<token>``) names each token: its
  holder acts under that name, so a decision made with the ``ops`` token is recorded as
  ``rest:ops`` and only it satisfies an approver ``rest:ops``. With neither set, /v1 is open,
  and only to loopback (main.py binds there).
- **Host allow-list.** Without a token the API trusts the network position of its caller, so
  a web page on another site must not reach it through DNS rebinding (its requests carry the
  attacker's host name): only loopback names and the host of ``PUBLIC_BASE_URL`` are served.
  Starlette's TrustedHostMiddleware would do this, but it cuts an IPv6 ``Host: [::1]:8000``
  at its first colon, so the check is ours.
- **Body limit.** ``/v1`` bodies larger than ``SWITCHBOARD_MAX_BODY`` are refused with 413,
  by their Content-Length before anything is read, or as soon as a streamed body passes it.

All of it is one ASGI middleware, because FastAPI reads and parses a body before any route
dependency runs: a dependency would check the token only after a 50 MB body was read.
Routes learn who called through ``CallerDep`` (which also declares the bearer scheme in the
OpenAPI document) and ask ``Caller.acting_as`` whom a request may speak for. Routes beyond
/v1 that need a token (a console's) add their prefix to ``Access.prefixes``; ``CallerDep``
on a route outside them fails rather than let an unchecked request through.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.errors import ConfigError
from agent.settings import Settings

SHARED_NAME = "api"
"""Who acts with the shared token, or with none."""
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PREFIX = "/v1"
SIGNED_PATHS = re.compile(r"^/v1/calls/[^/]+/result$")
TRIGGERS = "/v1/triggers"


class TokenSpecError(ConfigError):
    """``SWITCHBOARD_API_TOKENS`` is not a list of ``name:token`` pairs."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"SWITCHBOARD_API_TOKENS: {problem} (format: name:token,name:token)")
        self.problem = problem


def parse_named(spec: str) -> dict[str, str]:
    """``"ops:t1,oncall:t2"`` -> ``{"ops": "t1", "oncall": "t2"}``; refuses what is unclear."""
    named: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, token = part.partition(":")
        name, token = name.strip(), token.strip()
        if not sep or not token:
            raise TokenSpecError(f"{name or part!r} has no token: write name:token")
        if not NAME.match(name):
            raise TokenSpecError(f"{name!r} is not a name (letters, digits, . _ -)")
        if name == SHARED_NAME:
            raise TokenSpecError(f"{SHARED_NAME!r} is the shared token's name; pick another")
        if name in named:
            raise TokenSpecError(f"{name!r} is named twice")
        if token in named.values():
            raise TokenSpecError(f"{name!r} has the same token as another name")
        named[name] = token
    if not named:
        raise TokenSpecError("no name:token pair")
    return named


@dataclass(frozen=True)
class Caller:
    """Who made a request: ``name`` is what it is recorded as (``rest:<name>``)."""

    name: str
    named: bool = False
    """Authenticated by a named token: the name is proven, not claimed."""
    reserved: frozenset[str] = frozenset()
    """The named tokens' names, which only their tokens may act as."""

    def acting_as(self, claimed: str | None) -> str:
        """Who a request acts as: a named token's name, or what a shared caller says it is
        (default ``api``). A named token cannot act as anyone else, and nobody else can act
        as a named token's name: an approver ``rest:ops`` is satisfied by the ops token only.
        """
        if self.named:
            if claimed not in (None, self.name):
                raise HTTPException(403, f"this token acts as {self.name!r}, not {claimed!r}")
            return self.name
        if claimed in self.reserved:
            raise HTTPException(403, f"{claimed!r} is a token's name: use that token")
        return claimed or self.name


UNCHECKED = Caller("", reserved=frozenset({""}))
"""Stands for a caller no token vouched for; only a route that checks a signature accepts it."""


@dataclass(frozen=True)
class Access:
    """The API's access rules (see the module doc)."""

    shared: str | None = None
    named: Mapping[str, str] = field(default_factory=dict)
    max_body: int = 1 << 20
    hosts: frozenset[str] | None = None
    """Host names served when no token is set; None: any (an app built for a test)."""
    prefixes: tuple[str, ...] = (PREFIX,)
    """Paths whose requests need a token (and whose bodies are limited)."""
    signed: re.Pattern[str] = SIGNED_PATHS
    """Paths whose route checks a URL signature itself: a request there that carries a
    ``signature`` query parameter passes without a token (``caller`` stays unset)."""
    exempt: tuple[str, ...] = (TRIGGERS,)
    """Paths under those that check their callers themselves (a trigger's own secret or
    token: the sender of a webhook does not hold the API token)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        shared = settings.switchboard_api_token
        spec = settings.switchboard_api_tokens
        hosts = set(LOOPBACK_HOSTS)
        if settings.public_base_url:
            public = urlsplit(settings.public_base_url).hostname
            if public:
                hosts.add(public.lower())
        return cls(
            shared=shared.get_secret_value() if shared else None,
            named=parse_named(spec.get_secret_value()) if spec else {},
            max_body=settings.switchboard_max_body,
            hosts=frozenset(hosts),
        )

    @property
    def token_required(self) -> bool:
        return self.shared is not None or bool(self.named)

    def identify(self, authorization: str | None) -> Caller | None:
        """The caller a request's Authorization header proves; None: refuse it."""
        reserved = frozenset(self.named)
        if not self.token_required:
            return Caller(SHARED_NAME)
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return None
        given = presented.strip().encode()
        found: Caller | None = None
        # Compare with every token, so the time taken does not tell which one nearly matched.
        if self.shared is not None and secrets.compare_digest(given, self.shared.encode()):
            found = Caller(SHARED_NAME, reserved=reserved)
        for name, token in self.named.items():
            if secrets.compare_digest(given, token.encode()):
                found = Caller(name, named=True, reserved=reserved)
        return found

    def host_allowed(self, host_header: str | None) -> bool:
        if self.token_required or self.hosts is None:
            return True
        return host_name(host_header or "") in self.hosts


def host_name(header: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class AccessGuard:
    """ASGI middleware enforcing ``Access``; puts the ``Caller`` in ``request.state``."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if not self.access.host_allowed(headers.get("host")):
            await _refuse(send, 400, "invalid host header: not a name this API serves")
            return
        path: str = scope["path"]
        guarded = any(path == p or path.startswith(p + "/") for p in self.access.prefixes)
        if not guarded or any(path.startswith(p + "/") for p in self.access.exempt):
            await self.app(scope, receive, send)
            return
        caller = self.access.identify(headers.get("authorization"))
        query = scope.get("query_string", b"").decode("latin-1")
        if caller is None and self.access.signed.match(path) and "signature=" in query:
            caller = UNCHECKED  # the route verifies the signature (channels/rest/calls.py)
        if caller is None:
            await _refuse(
                send, 401, "missing or wrong bearer token", {"www-authenticate": "Bearer"}
            )
            return
        limit = self.access.max_body
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _refuse(send, 413, f"request body larger than {limit} bytes")
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, _limited(receive, limit), send)


def _limited(receive: Receive, limit: int) -> Receive:
    """A body without Content-Length (chunked) is cut off once it passes ``limit``."""
    seen = 0

    async def read() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return read


async def _refuse(send: Send, status: int, detail: str, extra: Mapping[str, str] = {}) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# Declares the bearer scheme in the OpenAPI document (the Authorize button of /docs); the
# token itself was checked by AccessGuard before the body was read.
bearer_scheme = HTTPBearer(auto_error=False, description="SWITCHBOARD_API_TOKEN(S)")


async def caller_of(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
) -> Caller:
    """Who called, as AccessGuard found it.

    As a dependency (``CallerDep``) it also puts the bearer scheme on the route's OpenAPI.
    ``async`` although it awaits nothing: FastAPI runs a plain ``def`` dependency in a
    worker thread, a thread hand-off on every request (8 % of the API's samples under REST
    load) to read one attribute.
    """
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        # Fail closed: a route that asks who called must sit under one of Access.prefixes.
        raise RuntimeError(f"{request.url.path} is not under a prefix AccessGuard checks")
    return caller


CallerDep = Annotated[Caller, Depends(caller_of)]
