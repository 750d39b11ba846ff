"""The HTTP application: the REST API, health, and whatever channel endpoints are enabled."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from opentelemetry.sdk.trace import TracerProvider

from agent.config import Registry
from channels import observability
from channels.rest.api import install_error_handlers, router
from store.threads import ThreadStore

CONSOLE = Path(__file__).parent / "rest" / "console.html"


def create_app(
    client: aioredis.Redis,
    store: ThreadStore,
    registry: Registry,
    *,
    api_token: str | None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Switchboard",
        summary="Human-in-the-loop agents over Slack, email, SMS and REST.",
        version="0.1.0",
    )
    install_error_handlers(app)
    observability.install(
        app,
        client,
        registry.agents,
        api_token=api_token is not None,
        tracer_provider=tracer_provider,
    )
    app.include_router(router(store, registry, api_token))

    @app.get("/", include_in_schema=False)
    async def console() -> HTMLResponse:
        """A small web console over the REST API: threads, events, pending requests."""
        return HTMLResponse(CONSOLE.read_text())

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """Liveness and Redis reachability."""
        try:
            await client.ping()
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "redis": str(exc)[:200]}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app
