"""The HTTP side of observability: /metrics, the edge middleware, FastAPI tracing.

The API serves /metrics on its own port; a worker process (no API) serves it on
``SWITCHBOARD_METRICS_PORT`` through ``metrics_app``. Either way the handler first reads the
shared gauges from Redis (store.gauges), then renders this process's registry, so the
pending-requests gauge is right whichever process answers and the counters are this
process's own (Prometheus sums them across processes). The edge middleware counts
refusals and Redis errors, and says in the log context how each sender was verified.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store import gauges
from telemetry import logs, metrics

access = logging.getLogger("switchboard.access")

# Which channel an inbound path belongs to, and how its requests prove who sent them.
_CHANNEL_PREFIXES = (
    ("/v1/", "rest", "bearer token"),
    ("/slack/", "slack", "Slack request signature"),
    ("/twilio/", "sms", "Twilio request signature"),
    ("/email/", "email", "signed link"),
)


def channel_of(path: str) -> str | None:
    return _edge(path)[0]


def _edge(path: str) -> tuple[str | None, str | None]:
    for prefix, channel, auth in _CHANNEL_PREFIXES:
        if path.startswith(prefix):
            return channel, auth
    return None, None


def metrics_endpoint(
    client: aioredis.Redis, agents: Iterable[str]
) -> Callable[[Request], Awaitable[Response]]:
    names = tuple(agents)

    async def scrape(_: Request) -> Response:
        try:
            await gauges.refresh(client, names)
        except RedisError:  # the counters are still worth a scrape without the gauges
            metrics.REDIS_ERRORS.labels("metrics").inc()
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return scrape


class HttpEdge:
    """ASGI middleware at the HTTP edge: access lines, refusals, Redis errors, and ``auth``.

    - One access line per request, carrying the thread it touched (``thread_id`` and the
      other fields bound while handling it); a successful GET or HEAD (the console polls)
      is logged at DEBUG, everything else at INFO. (It replaces uvicorn's access log.)
    - A POST to a channel's path answered 4xx counts as a refusal (channel, status).
    - Every line logged while handling a POST carries ``auth``: how the channel verified the
      sender, so a decision's line says who decided and how they proved it.
    """

    def __init__(self, app: ASGIApp, *, api_token: bool = True) -> None:
        self.app = app
        self.rest_auth = "bearer token" if api_token else "loopback (no API token)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        channel, auth = _edge(scope["path"]) if scope["method"] == "POST" else (None, None)
        if channel == "rest":
            auth = self.rest_auth
        status = 500  # unless a response starts
        started = time.perf_counter()

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if channel is not None and 400 <= status < 500:
                    metrics.INBOUND_REFUSED.labels(channel, str(status)).inc()
            await send(message)

        with logs.collecting() as touched:
            try:
                with logs.bound(auth=auth):
                    await self.app(scope, receive, watching)
            except RedisError:
                metrics.REDIS_ERRORS.labels("api").inc()
                raise
            finally:
                _access_line(scope, status, time.perf_counter() - started, touched)


def _access_line(scope: Scope, status: int, elapsed: float, touched: dict[str, str]) -> None:
    method = scope["method"]
    quiet = method in ("GET", "HEAD") and status < 400
    if not access.isEnabledFor(logging.DEBUG if quiet else logging.INFO):
        return
    client = scope.get("client")
    path = scope["path"] + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
    access.log(
        logging.DEBUG if quiet else logging.INFO,
        '%s - "%s %s HTTP/%s" %d',
        f"{client[0]}:{client[1]}" if client else "-",
        method,
        path,
        scope.get("http_version", "1.1"),
        status,
        extra={**touched, "status": status, "duration_ms": round(elapsed * 1000, 1)},
    )


def install(
    app: FastAPI,
    client: aioredis.Redis,
    agents: Iterable[str],
    *,
    api_token: bool,
    tracer_provider: TracerProvider | None = None,
) -> None:
    """Add /metrics and the edge middleware to the API; trace its requests if tracing is on."""
    app.add_route("/metrics", metrics_endpoint(client, agents), include_in_schema=False)
    app.add_middleware(HttpEdge, api_token=api_token)
    if tracer_provider is not None:
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            excluded_urls="/metrics,/healthz",
            exclude_spans=["receive", "send"],  # one span per request, not three
        )


def metrics_app(client: aioredis.Redis, agents: Iterable[str]) -> Starlette:
    """/metrics (and /healthz) alone, for a worker process."""

    async def healthz(_: Request) -> Response:
        return Response("ok")

    return Starlette(
        routes=[
            Route("/metrics", metrics_endpoint(client, agents)),
            Route("/healthz", healthz),
        ]
    )
