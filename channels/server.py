"""The HTTP server: uvicorn serving the API, in one process or in several on one socket.

With one process (the default) uvicorn binds the port itself. With more
(SWITCHBOARD_API_PROCESSES), the first process binds it as uvicorn would (so a port in use
fails the same way), serves on it, and keeps the others serving on the same socket, which
they inherit (``Siblings``): the kernel hands each new connection to whichever process
accepts it first, so the webhooks spread over the cores. The channels' own ports (SMTP) are
bound by the first process too and handed on the same way. A sibling is a new interpreter
(``main.py`` with a hidden role), not a fork: the first process has threads and an event
loop running by then, which a fork would copy half-way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn

log = logging.getLogger("switchboard.server")

SIBLING_ROLE = "_http"
"""main.py's hidden role: serve HTTP on an inherited socket beside the first process."""
RESTART_FIRST_S = 0.5
"""Seconds before a sibling that died is started again..."""
RESTART_MAX_S = 30.0
"""... doubling, up to this, while each new one dies within ``STEADY_S`` of its start."""
STEADY_S = 10.0
KILL_AFTER_S = 5.0
"""After a second signal, seconds a sibling has to stop before it is killed."""


class Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the service's (main.py) stop everything, the
    HTTP server included, in order; uvicorn's would end the process before workers drain."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    # httptools: llhttp's C parser; uvicorn's default h11 parses each request in Python
    # (about 15 % of the API's CPU per webhook under load, bench/README.md).
    return uvicorn.Config(
        app, host=host, port=port, http="httptools", log_config=None, access_log=False
    )


async def serve_http(
    app: Any, host: str, port: int, stop: asyncio.Event, sock: socket.socket | None = None
) -> None:
    """Serve until the service stops (``stop``), on ``sock`` if given (bound elsewhere)."""
    server = Server(_config(app, host, port))

    async def on_stop() -> None:
        await stop.wait()
        server.should_exit = True

    watch = asyncio.create_task(on_stop())
    try:
        await server.serve(sockets=None if sock is None else [sock])
    finally:
        stop.set()  # the server ended by itself (a port in use): stop the rest too
        await watch


async def serve_shared(
    app: Any, host: str, port: int, stop: asyncio.Event, siblings: Siblings
) -> None:
    """Bind the port, then serve on it here and in ``siblings``, until the service stops."""
    sock = _config(app, host, port).bind_socket()  # a port in use: logged, exit 1, as uvicorn
    await asyncio.gather(serve_http(app, host, port, stop, sock), siblings.run(sock, stop))


@dataclass(frozen=True)
class Inherited:
    """What a sibling is handed: the listening socket, the channels' own listening sockets
    by name (``shared``), and its end of a pipe from the first process, which reads as
    closed once that process is gone, however it ended."""

    sock: socket.socket
    parent: int
    shared: Mapping[str, socket.socket]

    @classmethod
    def from_args(cls, argv: Sequence[str]) -> Inherited:
        parser = argparse.ArgumentParser(prog=f"main.py {SIBLING_ROLE}")
        parser.add_argument("--socket-fd", type=int, required=True)
        parser.add_argument("--parent-fd", type=int, required=True)
        parser.add_argument("--shared", action="append", default=[], metavar="NAME=FD")
        args = parser.parse_args(argv)
        shared = {}
        for each in args.shared:
            name, _, fd = each.rpartition("=")
            shared[name] = socket.socket(fileno=int(fd))
        return cls(socket.socket(fileno=args.socket_fd), args.parent_fd, shared)

    async def watch(self, stop: asyncio.Event) -> None:
        """Stop this process when the first one is gone, even killed: no sibling outlives it."""
        loop = asyncio.get_running_loop()
        gone = asyncio.Event()
        loop.add_reader(self.parent, gone.set)
        try:
            await _first(gone.wait(), stop.wait())
        finally:
            loop.remove_reader(self.parent)
        if gone.is_set() and not stop.is_set():
            log.warning("the first API process is gone: stopping")
            stop.set()


class Siblings:
    """The other processes serving HTTP on the first one's socket: started with it, each
    started again when it dies (logged; sooner or later, by ``RESTART_*``), and stopped
    with it: SIGTERM, and they finish their requests in flight as the first one does."""

    def __init__(
        self,
        command: Sequence[str],
        count: int,
        env: Mapping[str, str],
        shared: Mapping[str, socket.socket] | None = None,
    ) -> None:
        self.command = list(command)
        self.count = count
        self.env = dict(env)
        self.shared = dict(shared or {})

    async def run(self, sock: socket.socket, stop: asyncio.Event) -> None:
        # The write end stays here, unshared (os.pipe's ends are not inherited); when this
        # process ends, however, the siblings read end-of-file on theirs (Inherited.watch).
        read_end, write_end = os.pipe()
        argv = [
            *self.command,
            *("--socket-fd", str(sock.fileno()), "--parent-fd", str(read_end)),
            *(f"--shared={name}={s.fileno()}" for name, s in self.shared.items()),
        ]
        fds = (sock.fileno(), read_end, *(s.fileno() for s in self.shared.values()))
        try:
            await asyncio.gather(*(self._keep(argv, fds, stop) for _ in range(self.count)))
        finally:
            os.close(read_end)
            os.close(write_end)

    async def _keep(self, argv: list[str], fds: tuple[int, ...], stop: asyncio.Event) -> None:
        """One sibling's place: a process in it for as long as the service runs."""
        loop = asyncio.get_running_loop()
        delay = RESTART_FIRST_S
        while not stop.is_set():
            # Its own session: a Ctrl-C to the terminal's process group reaches the first
            # process only, which passes one SIGTERM on (a second would mean "at once").
            proc = await asyncio.create_subprocess_exec(
                *argv, pass_fds=fds, env=self.env, start_new_session=True
            )
            log.info("API process %d started, serving on the same socket", proc.pid)
            started = loop.time()
            try:
                await _first(proc.wait(), stop.wait())
                if proc.returncode is None:  # the service stops
                    proc.send_signal(signal.SIGTERM)
                    await proc.wait()
                    return
            finally:
                if proc.returncode is None:  # cancelled: a second signal, or an error here
                    await _end(proc)
            delay = RESTART_FIRST_S if loop.time() - started >= STEADY_S else delay
            log.error(
                "API process %d ended (%s): starting another in %.1f s",
                proc.pid,
                _how(proc.returncode),
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, RESTART_MAX_S)


async def _end(proc: asyncio.subprocess.Process) -> None:
    """A second SIGTERM (the sibling stops at once), then SIGKILL if it is still there."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), KILL_AFTER_S)
    except (TimeoutError, asyncio.CancelledError):  # cancelled again: do not wait at all
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


async def _first(*waits: Any) -> None:
    """Wait until the first of ``waits`` is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
