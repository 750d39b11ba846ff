"""The HTTP application: the REST API, health, and whatever channel endpoints are enabled."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from opentelemetry.sdk.trace import TracerProvider

from agent.config import Registry
from channels import observability
from channels.rest import audit
from channels.rest.api import install_error_handlers, router
from channels.rest.auth import Access, AccessGuard
from store.connection import INFRA_ERRORS, Outage
from store.port import ChannelPort

log = logging.getLogger("switchboard.api")

CONSOLE = Path(__file__).parent / "rest" / "static"
"""The operator console: plain HTML, CSS and JS, no build step, nothing from a CDN."""
HEALTH_PING_S = 2.0
"""A health check answers within this, whatever the Redis client's retries would wait."""
UNHEALTHY: tuple[type[Exception], ...] = (*INFRA_ERRORS, TimeoutError)


def create_app(
    client: aioredis.Redis,
    port: ChannelPort,
    registry: Registry,
    *,
    access: Access,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    # FastAPIOffline: /docs and /redoc from files of a pip package, not a CDN (offline hosts).
    app = FastAPIOffline(
        title="Switchboard",
        summary="Human-in-the-loop agents over Slack, email, SMS and REST.",
        version="0.1.0",
    )
    app.add_middleware(AccessGuard, access=access)
    outage = Outage(log, "api")
    install_error_handlers(app, outage)
    observability.install(
        app,
        client,
        registry.agents,
        api_token=access.token_required,
        tracer_provider=tracer_provider,
    )
    app.include_router(router(port, registry, access))
    app.include_router(audit.router(port))

    app.mount("/console", StaticFiles(directory=CONSOLE), name="console")

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        """The operator console over the REST API: inbox, threads, live updates."""
        return FileResponse(CONSOLE / "console.html", headers={"Cache-Control": "no-cache"})

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """Liveness and Redis reachability: 503 ``degraded`` while Redis is away."""
        try:
            await asyncio.wait_for(client.ping(), HEALTH_PING_S)
        except UNHEALTHY as exc:
            outage.failed(exc)
            detail = str(exc)[:200] or "no answer in time"
            return JSONResponse({"status": "degraded", "redis": detail}, status_code=503)
        outage.ok()
        return JSONResponse({"status": "ok"})

    return app
