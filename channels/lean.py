"""Inbound webhooks served ahead of FastAPI's router: the hot POSTs without its per-request
machinery.

Under webhook load, FastAPI's routing through the included routers, its dependency solving
and its response model were about a third of the API's CPU per request (bench/README.md).
A ``LeanRoute`` answers one method and path before any other route is tried, with a plain
handler over Starlette's ``Request``. It sits inside the router, so everything around the
router still applies as to any route: the access guard (tokens, Host, body limit), the edge's
access line and metrics, and the app's exception handlers (an ``HTTPException`` or a Redis
error raised here becomes the same answer as from a FastAPI route).

A handler may decline a request (return None): it then goes on to the routes behind, its
body replayed, and the FastAPI route answers it as it always did. A handler takes only the
well-formed case, and every refusal (validation errors and their exact form) stays
FastAPI's. The FastAPI route stays registered for that, and for the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LeanHandler = Callable[[Request], Awaitable[Response | None]]
"""The response, or None: FastAPI's route answers instead."""

DECLINED = "switchboard.lean_declined"
"""Scope key: the lean route passed this request on, so it must not match it again."""


class LeanRoute(BaseRoute):
    def __init__(self, method: str, path: str, handler: LeanHandler, behind: ASGIApp) -> None:
        self.method = method
        self.path = path
        self.handler = handler
        self.behind = behind
        """The router the route sits in: where a declined request goes on."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # scope["path"], not the route path under a root_path: with a root_path set the
        # request simply misses this route and FastAPI's answers it.
        if (
            scope["type"] == "http"
            and scope["method"] == self.method
            and scope["path"] == self.path
            and DECLINED not in scope
        ):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handler(request)
        if response is not None:
            await response(scope, receive, send)
            return
        body = await request.body()  # read by the handler already, or read now as FastAPI would
        scope[DECLINED] = True
        await self.behind(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once more, then the connection's own messages (a disconnect)."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def serve(app: Starlette, method: str, path: str, handler: LeanHandler) -> None:
    """Answer ``method path`` with ``handler`` ahead of every route of ``app`` (a route
    already there for them stays behind it, for what the handler declines)."""
    app.router.routes.insert(0, LeanRoute(method, path, handler, app.router))
