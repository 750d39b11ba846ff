"""The HTTP application: the REST API, health, and whatever channel endpoints are enabled."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from agent.config import Registry
from channels.rest.api import install_error_handlers, router
from store.threads import ThreadStore

CONSOLE = Path(__file__).parent / "rest" / "static"
"""The operator console: plain HTML, CSS and JS, no build step, nothing from a CDN."""


def create_app(
    client: aioredis.Redis, store: ThreadStore, registry: Registry, *, api_token: str | None
) -> FastAPI:
    app = FastAPI(
        title="Switchboard",
        summary="Human-in-the-loop agents over Slack, email, SMS and REST.",
        version="0.1.0",
    )
    install_error_handlers(app)
    app.include_router(router(store, registry, api_token))

    app.mount("/console", StaticFiles(directory=CONSOLE), name="console")

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        """The operator console over the REST API: inbox, threads, live updates."""
        return FileResponse(CONSOLE / "console.html", headers={"Cache-Control": "no-cache"})

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """Liveness and Redis reachability."""
        try:
            await client.ping()
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "redis": str(exc)[:200]}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app
