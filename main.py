"""Switchboard: run the service.

python main.py            API + worker + outbox in one process (embedded Redis if no REDIS_URL)
python main.py api        only the HTTP API and channel endpoints
python main.py worker     only agent workers and outbox senders (scale out: run several)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

import redis.asyncio as aioredis
import uvicorn
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from agent import config
from agent.delivery import Sender
from agent.errors import ConfigError
from agent.llm import LLM, NoLLM, OpenAILLM
from agent.outbox import OutboxDispatcher
from agent.runner import RunSettings
from agent.settings import Settings, load_settings
from agent.worker import Worker, WorkerSettings
from channels.app import create_app
from channels.observability import metrics_app
from channels.registry import Channel, Services, build_channels
from channels.rest.auth import Access
from channels.rest.sender import RestSender
from store import connection, embedded, partitions
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from telemetry import logs, metrics, tracing

log = logging.getLogger("switchboard")


def make_llm(settings: Settings) -> LLM:
    if not settings.llm_configured:
        return NoLLM()
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAILLM(
        model=settings.switchboard_model,
        api_key=key,
        base_url=settings.openai_base_url,
        timeout=settings.switchboard_llm_timeout,
    )


def listen_host(settings: Settings) -> str:
    """Without an API token, only loopback may reach the API."""
    if Access.from_settings(settings).token_required:
        return settings.host
    try:
        loopback = ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        loopback = settings.host == "localhost"
    if not loopback:
        log.warning("HOST=%s ignored: no SWITCHBOARD_API_TOKEN is set", settings.host)
        return "127.0.0.1"
    return settings.host


async def run(role: str, settings: Settings, redis_url: str) -> None:
    registry = config.load(settings.switchboard_config)
    if settings.switchboard_partitions is not None:  # from .env too, where the store looks
        os.environ.setdefault(partitions.ENV, str(settings.switchboard_partitions))
    # The API and the channels repeat a command Redis dropped; the workers must not (see
    # store/connection.py), so they get a client of their own.
    client = connection.connect(redis_url, retrying=True)
    store = ThreadStore(client)
    await store.setup()
    outbox = OutboxStore(client)
    services = Services(settings, client, ChannelPort(store, outbox), registry)
    channels = build_channels(services)
    stop = asyncio.Event()
    jobs: list[Coroutine[Any, Any, None]] = []
    clients = [client]
    log.info("agents: %s (default %s)", ", ".join(registry.agents), registry.default)
    log.info("channels on: %s", ", ".join(["rest", *(c.name for c in channels)]))
    metrics.preset(registry.agents, ["rest", *(c.name for c in channels)])
    if role in ("serve", "worker"):
        clients.append(connection.connect(redis_url, retrying=False))
        jobs += worker_jobs(services, clients[-1], channels, stop)
    if role == "worker" and settings.switchboard_metrics_port is not None:
        jobs.append(metrics_job(services, stop))
    if role in ("serve", "api"):
        jobs += api_jobs(services, channels, stop)
    elif settings.switchboard_metrics_port is None:  # no HTTP server to catch the signals
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.gather(*jobs)
    finally:
        for channel in channels:
            for close in channel.closers:
                await close()
        for each in clients:
            await each.aclose()


def worker_jobs(
    services: Services, client: aioredis.Redis, channels: list[Channel], stop: asyncio.Event
) -> list[Coroutine[Any, Any, None]]:
    settings = services.settings
    store = ThreadStore(client)
    llm = make_llm(settings)
    if isinstance(llm, NoLLM):
        log.warning("no LLM configured (OPENAI_API_KEY / OPENAI_BASE_URL): runs will ask a human")
    else:
        log.info("LLM: %s at %s", settings.switchboard_model, settings.openai_base_url or "OpenAI")
    worker = Worker(
        store,
        services.registry,
        llm,
        settings=WorkerSettings(
            concurrency=settings.switchboard_worker_concurrency,
            run=RunSettings(
                lease_ttl_ms=settings.switchboard_lease_ttl_ms,
                llm_retry_delay=settings.switchboard_llm_retry_delay,
            ),
        ),
    )
    senders: dict[str, Sender] = {"rest": RestSender()}
    senders.update({c.name: c.sender for c in channels if c.sender is not None})
    dispatcher = OutboxDispatcher(
        store.outbox_stream, OutboxStore(client), senders, name=worker.name
    )
    return [worker.run(stop), dispatcher.run(stop)]


def metrics_job(services: Services, stop: asyncio.Event) -> Coroutine[Any, Any, None]:
    """A worker's own /metrics: its counters, and the shared gauges read from Redis."""
    settings = services.settings
    app = metrics_app(services.redis, services.registry.agents)
    host, port = listen_host(settings), settings.switchboard_metrics_port or 0
    log.info("metrics at http://%s:%d/metrics", host, port)
    return serve_http(app, host, port, stop)


def api_jobs(
    services: Services, channels: list[Channel], stop: asyncio.Event
) -> list[Coroutine[Any, Any, None]]:
    settings = services.settings
    access = Access.from_settings(settings)
    app = create_app(
        services.redis,
        services.port,
        services.registry,
        access=access,
        tracer_provider=tracing.provider(),
    )
    for channel in channels:
        if channel.mount is not None:
            channel.mount(app)
    host = listen_host(settings)
    if not access.token_required:
        log.warning("no SWITCHBOARD_API_TOKEN: the API listens on loopback only (%s)", host)
    listeners = [
        supervised(f"{c.name} listener", listen, stop) for c in channels for listen in c.listeners
    ]
    return [serve_http(app, host, settings.port, stop), *listeners]


async def supervised(
    name: str, listen: Callable[[asyncio.Event], Coroutine[Any, Any, None]], stop: asyncio.Event
) -> None:
    """Run a channel's listener until the service stops; a Redis outage restarts it once
    Redis is back instead of ending the service."""
    outage = connection.Outage(log, name)
    while not stop.is_set():
        try:
            await listen(stop)
        except connection.INFRA_ERRORS as exc:
            await outage.wait(exc, stop)
        else:
            return


async def serve_http(app: Any, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve until a signal, then stop the rest: uvicorn catches SIGINT / SIGTERM for us."""
    # No uvicorn access log: the app writes its own (channels.observability.HttpEdge).
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    try:
        await server.serve()
    finally:
        stop.set()


def start_tracing() -> TracerProvider | None:
    """OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise nothing is installed."""
    provider = tracing.from_environment()
    tracing.install(provider)
    if provider is None:
        return None
    # Their spans are children of ours (a run's Redis commands, a URL tool's HTTP calls).
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    log.info(
        "tracing on: OTLP to %s", os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "(traces endpoint)")
    )
    return provider


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Handle SIGTERM as SIGINT is handled at this moment (asyncio.run cancels its main task)."""
    on_sigint = signal.getsignal(signal.SIGINT)
    if callable(on_sigint):
        on_sigint(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", nargs="?", default="serve", choices=["serve", "api", "worker"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings()
        Access.from_settings(settings)
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.switchboard_log_format, settings.switchboard_log_level)
    provider = start_tracing()
    # SIGTERM (docker stop, systemd) ends the service like Ctrl-C does, through the same
    # clean-up: uvicorn re-raises the signal it caught once it has shut down, and the default
    # action would end the process before the embedded Redis is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    server = None
    redis_url = settings.redis_url
    if redis_url is None:
        server = embedded.start_persistent(settings.switchboard_data_dir)
        redis_url = server.url
        log.info("embedded Redis at %s (AOF on)", redis_url)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(args.role, settings, redis_url))
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
        if provider is not None:
            provider.shutdown()  # flushes the spans still queued for export
    return 0


if __name__ == "__main__":
    sys.exit(main())
