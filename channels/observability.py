"""The HTTP side of observability: /metrics, the edge middleware, FastAPI tracing.

The API serves /metrics on its own port; a worker process (no API) serves it on
``SWITCHBOARD_METRICS_PORT`` through ``metrics_app``. Either way the handler first reads the
shared gauges from Redis (store.gauges), then renders this process's registry, so the
pending-requests gauge is right whichever process answers and the counters are this
process's own (Prometheus sums them across processes). The edge middleware counts
refusals and Redis errors, and says in the log context how each sender was verified.
"""

from __future__ import annotations

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


class InboundEdge:
    """ASGI middleware at the edge: refusals counted, Redis errors counted, context bound.

    A POST to a channel's path that is answered 4xx counts as a refusal (by channel and
    status). Every line logged while handling it carries ``auth``: how the channel
    verified the sender (a decision's log line says who decided and how they proved it).
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

        async def counting(message: Message) -> None:
            if (
                channel is not None
                and message["type"] == "http.response.start"
                and 400 <= message["status"] < 500
            ):
                metrics.INBOUND_REFUSED.labels(channel, str(message["status"])).inc()
            await send(message)

        try:
            with logs.bound(auth=auth):
                await self.app(scope, receive, counting)
        except RedisError:
            metrics.REDIS_ERRORS.labels("api").inc()
            raise


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
    app.add_middleware(InboundEdge, api_token=api_token)
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
