"""Switchboard: run the service.

python main.py            API + worker + outbox in one process (embedded Redis if no REDIS_URL)
python main.py api        only the HTTP API and channel endpoints
python main.py worker     only agent workers and outbox senders (scale out: run several)
python main.py check      check the configuration (--live: also reach Redis, the model...)
python main.py replay     what another prompt version would have decided (replay --help)
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any

import redis.asyncio as aioredis
import uvloop
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from agent import collector, config, handoff, replay, tokens
from agent.delivery import Sender
from agent.errors import ConfigError
from agent.llm import LLM, NoLLM, OpenAILLM
from agent.outbox import OutboxDispatcher
from agent.runner import RunSettings
from agent.scheduler import Scheduler
from agent.settings import Settings, load_settings
from agent.toolbox import Toolbox
from agent.worker import Worker, WorkerSettings
from channels import checks, server
from channels.app import create_app
from channels.mcp import client as mcp_client
from channels.observability import metrics_app
from channels.registry import Channel, Services, build_channels
from channels.rest.auth import Access
from store import connection, embedded, partitions
from store.calls import Calls
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from telemetry import logs, metrics, tracing

log = logging.getLogger("switchboard")
MAIN = Path(__file__).resolve()
"""This file: what a sibling API process, and the first one starting again, run."""


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


async def run(
    role: str, settings: Settings, redis_url: str, inherited: server.Inherited | None = None
) -> None:
    """Run ``role`` until a signal; ``inherited``: a sibling API process's socket and pipe."""
    registry = config.load(settings.switchboard_config)
    # Tools from MCP servers join the agents once listed; a server that is down leaves its
    # agent running without them (agent/toolbox.py).
    toolbox = Toolbox(registry, registry.mcp, mcp_client.connect)
    await toolbox.start()
    if settings.switchboard_partitions is not None:  # from .env too, where the store looks
        os.environ.setdefault(partitions.ENV, str(settings.switchboard_partitions))
    # The API and the channels repeat a command Redis dropped; the workers must not (see
    # store/connection.py), so they get a client of their own.
    client = connection.connect(redis_url, retrying=True)
    store = ThreadStore(client)
    await store.setup()
    services = Services(settings, client, ChannelPort(store, OutboxStore(client)), registry)
    channels = build_channels(services)
    stop = asyncio.Event()
    jobs: list[Coroutine[Any, Any, None]] = []
    clients = [client]
    log.info("agents: %s (default %s)", ", ".join(registry.agents), registry.default)
    log.info("context tokens counted by %s", tokens.counter().method)
    log.info("channels on: %s", ", ".join(c.name for c in channels))
    metrics.preset(registry.agents, [c.name for c in channels])
    if role in ("serve", "worker"):
        clients.append(connection.connect(redis_url, retrying=False))
        jobs += worker_jobs(services, clients[-1], channels, stop)
    if role == "worker" and settings.switchboard_metrics_port is not None:
        jobs.append(metrics_job(services, stop))
    if role in ("serve", "api", server.SIBLING_ROLE):
        jobs += api_jobs(services, channels, stop, redis_url, inherited)
    if registry.mcp:
        jobs.append(toolbox.run(stop))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, stop, asyncio.current_task())
    collector.settle()  # start-up's objects frozen, young collections less often
    try:
        await asyncio.gather(*jobs)
    finally:
        for channel in channels:
            for close in channel.closers:
                await close()
        for each in clients:
            await each.aclose()
        await toolbox.close()


def _on_signal(stop: asyncio.Event, main: asyncio.Task[Any] | None) -> None:
    """The first SIGINT/SIGTERM stops gracefully (workers finish the tools in flight, up to
    SWITCHBOARD_SHUTDOWN_GRACE); a second one does not wait."""
    if stop.is_set() and main is not None:
        log.warning("second signal: stopping now")
        main.cancel()
        return
    log.info("stopping (again to stop at once)")
    stop.set()


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
                result_base=settings.public_base_url or f"http://127.0.0.1:{settings.port}",
            ),
            shutdown_grace=settings.switchboard_shutdown_grace,
            alive_file=settings.switchboard_alive_file,
        ),
    )
    senders: dict[str, Sender] = {c.name: c.sender for c in channels if c.sender is not None}
    senders[handoff.CHANNEL] = handoff.ToParent(Calls(client))  # a child's answer, to its parent
    dispatcher = OutboxDispatcher(
        store.outbox_stream, OutboxStore(client), senders, name=worker.name
    )
    worker.deliver_with(dispatcher)
    worker.warm()  # before collector.settle(): what it compiles is kept for good
    # Every worker process keeps the schedules' clock: a tick is started once however many.
    scheduler = Scheduler(store, services.registry.schedules)
    return [worker.run(stop), dispatcher.run(stop), scheduler.run(stop)]


def metrics_job(services: Services, stop: asyncio.Event) -> Coroutine[Any, Any, None]:
    """A worker's own /metrics: its counters, and the shared gauges read from Redis."""
    settings = services.settings
    app = metrics_app(services.redis, services.registry.agents)
    host, port = listen_host(settings), settings.switchboard_metrics_port or 0
    log.info("metrics at http://%s:%d/metrics", host, port)
    return server.serve_http(app, host, port, stop)


def api_jobs(
    services: Services,
    channels: list[Channel],
    stop: asyncio.Event,
    redis_url: str,
    inherited: server.Inherited | None,
) -> list[Coroutine[Any, Any, None]]:
    """The HTTP server and the channels' listeners; in a sibling API process (``inherited``)
    the servers on the first one's sockets, and only what runs in every process."""
    settings = services.settings
    access = Access.from_settings(settings)
    app = create_app(
        services.redis,
        services.registry,
        access=access,
        channels=channels,
        tracer_provider=tracing.provider(),
    )
    host = listen_host(settings)
    if not access.token_required:
        log.warning("no SWITCHBOARD_API_TOKEN: the API listens on loopback only (%s)", host)
    shared = {f"{c.name}.{i}": each for c in channels for i, each in enumerate(c.shared)}
    # Bound before any job exists (a port in use ends the start here) and a sibling starts.
    sockets = inherited.shared if inherited else {n: each.bind() for n, each in shared.items()}
    jobs = [listen(stop) for c in channels for listen in c.per_process]
    # Not supervised: closing an asyncio server closes its socket, which nothing here could
    # bind again for the other processes; an SMTP session's errors end that session only.
    jobs += [each.serve(sockets[name], stop) for name, each in shared.items()]
    if inherited is not None:
        return [
            server.serve_http(app, host, settings.port, stop, inherited.sock),
            inherited.watch(stop),
            *jobs,
        ]
    jobs += [
        supervised(f"{c.name} listener", listen, stop) for c in channels for listen in c.listeners
    ]
    if settings.switchboard_api_processes == 1:
        return [server.serve_http(app, host, settings.port, stop), *jobs]
    # The embedded Redis is this process's: the siblings join it rather than start their own.
    siblings = server.Siblings(
        [sys.executable, str(MAIN), server.SIBLING_ROLE],
        settings.switchboard_api_processes - 1,
        {**os.environ, "REDIS_URL": redis_url},
        sockets,
    )
    return [server.serve_shared(app, host, settings.port, stop, siblings), *jobs]


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


def event_loop(role: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop (libuv; transports, callbacks and timers in C) for the API: the loop's own
    Python was about a tenth of a webhook's CPU. ``serve`` and the workers keep asyncio's
    loop: what they cost is measured on it (bench/README.md), uvloop there is not."""
    return uvloop.new_event_loop if role in ("api", server.SIBLING_ROLE) else None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Handle SIGTERM as SIGINT is handled at this moment (asyncio.run cancels its main task)."""
    on_sigint = signal.getsignal(signal.SIGINT)
    if callable(on_sigint):
        on_sigint(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def replay_command(argv: list[str]) -> int:
    """``main.py replay``: ask the configured model again with another prompt; writes nothing."""
    parser = argparse.ArgumentParser(prog="main.py replay", description=replay.__doc__)
    parser.add_argument("--agent", help="the agent (default: the configured default)")
    parser.add_argument("--prompt", required=True, help="the version to try, e.g. deploybot/v2")
    parser.add_argument("--thread", action="append", default=[], help="a thread id (repeat)")
    parser.add_argument("--since", help="threads created in the last 7d, 12h, 30m...")
    parser.add_argument("--limit", type=int, help="at most this many threads, newest first")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        registry = config.load(settings.switchboard_config)
        agent = registry.get(args.agent)
        if agent is None:
            raise ConfigError(f"agent {args.agent!r} is not configured")
        if args.since is not None:
            replay.since_ms(args.since)
    except (ConfigError, ValueError) as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    server = None
    redis_url = settings.redis_url
    if redis_url is None:
        server = embedded.start_persistent(settings.switchboard_data_dir)
        redis_url = server.url

    async def go() -> replay.ReplayReport:
        client = connection.connect(redis_url, retrying=True)
        # The agent's MCP tools are part of its step schema: list them (nothing is called).
        toolbox = Toolbox(
            registry, {agent.name: registry.mcp.get(agent.name, {})}, mcp_client.connect
        )
        try:
            await toolbox.start()
            with_tools = registry.agents[agent.name]
            reads = ThreadStore(client)
            ids = await replay.select(
                reads, agent.name, thread_ids=args.thread, since=args.since, limit=args.limit
            )
            return await replay.replay(reads, with_tools, args.prompt, make_llm(settings), ids)
        finally:
            await toolbox.close()
            await client.aclose()

    try:
        report = asyncio.run(go())
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
    print(report.model_dump_json(indent=2) if args.json else report.table())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replay"]:
        return replay_command(argv[1:])
    inherited, role, live = None, server.SIBLING_ROLE, False
    if argv[:1] == [server.SIBLING_ROLE]:  # started by the first API process, not by hand
        inherited = server.Inherited.from_args(argv[1:])
    else:
        parser = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        parser.add_argument(
            "role", nargs="?", default="serve", choices=["serve", "api", "worker", "check"]
        )
        parser.add_argument(
            "--live", action="store_true", help="check: also reach Redis, the model, Slack, ..."
        )
        args = parser.parse_args(argv)
        role, live = args.role, args.live
    logging.basicConfig(
        level=logging.WARNING if role == "check" else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        checked = checks.validate(load_settings(), "api" if inherited else role)
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    settings = checked.settings
    if role == "check":
        table, fine = asyncio.run(checks.report(checked, live))
        print(table)
        return 0 if fine else 1
    several = role in ("serve", "api") and settings.switchboard_api_processes > 1
    if several and metrics.MULTIPROC_ENV not in os.environ:
        return start_again(argv)
    if several or inherited is not None:
        log.info("metrics: every API process's counts, in %s", metrics.across_processes())
        # At the very end, however main returns (only the process that made it removes it).
        atexit.register(metrics.remove_shared_dir)
    logs.setup(settings.switchboard_log_format, settings.switchboard_log_level)
    provider = start_tracing()
    # SIGTERM (docker stop, systemd) ends the service like Ctrl-C does, through the same
    # clean-up: uvicorn re-raises the signal it caught once it has shut down, and the default
    # action would end the process before the embedded Redis is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    redis_server = None
    redis_url = settings.redis_url
    if redis_url is None:
        try:
            redis_server = embedded.start_persistent(settings.switchboard_data_dir)
        except embedded.EmbeddedRedisError as exc:
            print(f"switchboard: embedded Redis: {exc}", file=sys.stderr)
            return 2
        redis_url = redis_server.url
        log.info("embedded Redis at %s (AOF on)", redis_url)
    try:
        with (
            contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError),
            asyncio.Runner(loop_factory=event_loop(role)) as runner,
        ):
            runner.run(run(role, settings, redis_url, inherited))
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except connection.INFRA_ERRORS as exc:
        # Only at start: once running, the service waits Redis out (store/connection.py).
        where = "the embedded Redis" if redis_server else f"REDIS_URL={settings.redis_url}"
        print(f"switchboard: cannot reach {where}: {exc}", file=sys.stderr)
        return 2
    finally:
        if redis_server is not None:
            redis_server.stop()
        if provider is not None:
            provider.shutdown()  # flushes the spans still queued for export
    return 0


def start_again(argv: list[str]) -> int:
    """Several API processes count into shared files, a mode prometheus_client picks once,
    when it is imported, from PROMETHEUS_MULTIPROC_DIR: so this process starts again with a
    new directory there, as a start-up script would set it. An exec, not a child: the pid
    stays the one whoever started the service signals."""
    directory = metrics.new_shared_dir()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(
            sys.executable,
            [sys.executable, str(MAIN), *argv],
            {**os.environ, metrics.MULTIPROC_ENV: directory},
        )
    except OSError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        print(f"switchboard: cannot start {sys.executable} again: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
