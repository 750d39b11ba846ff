"""SWITCHBOARD_API_PROCESSES=2: two real processes serve one port (main.py, channels/server.py).

Which process accepts a connection is the kernel's choice, so the tests choose for it: with
one process stopped (SIGSTOP), the other must serve. Real processes, real HTTP and SMTP over
loopback, the embedded Redis the first process starts (which the sibling joins).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import redis
from uvicorn.server import STARTUP_FAILURE

from store.embedded import free_port
from tests.conftest import ROOT
from tests.email_helpers import AGENT, ALICE, REGISTRY_TOML
from tests.process import ServiceProcess, clean_env, poll, service_process

TWO = {"SWITCHBOARD_API_PROCESSES": "2"}
STARTED = "switchboard_threads_started_total"


@contextmanager
def _two(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[ServiceProcess]:
    env = {**TWO, **(env or {})}
    with service_process(tmp_path, env, args=("api",), within=120) as running:
        poll(lambda: _siblings(running), within=60)
        yield running


def _siblings(service: ServiceProcess) -> list[int]:
    """The pids of the sibling processes started so far, oldest first."""
    return [int(p) for p in re.findall(r"API process (\d+) started", service.log())]


def _metrics_dir(service: ServiceProcess) -> Path:
    found = re.search(r"every API process's counts, in (\S+)", service.log())
    assert found, service.log()
    return Path(found[1])


def _alive(pid: int) -> bool:
    """Running (a zombie, ended but not yet reaped by whoever adopted it, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@contextmanager
def _stopped(pid: int) -> Iterator[None]:
    """``pid`` frozen: every connection meanwhile is accepted by another process."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _start_threads(base: str, n: int) -> None:
    for _ in range(n):  # a new connection each: accepted by whichever process is running
        reply = httpx.post(f"{base}/v1/threads", json={"message": "hello"}, timeout=30)
        assert reply.status_code == 201, reply.text


def _scrape(base: str) -> str:
    return httpx.get(f"{base}/metrics", timeout=30).text


def _counted(text: str, name: str) -> list[float]:
    return [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + "{")]


@pytest.mark.timeout(180)
def test_two_processes_serve_count_together_restart_and_stop_together(tmp_path: Path) -> None:
    with _two(tmp_path) as service:
        first, [sibling] = service.process.pid, _siblings(service)
        shared = _metrics_dir(service)
        with _stopped(first):
            _start_threads(service.base, 3)  # the sibling's
            from_sibling = _scrape(service.base)
        with _stopped(sibling):
            _start_threads(service.base, 2)  # the first process's
            from_first = _scrape(service.base)
        assert _counted(from_sibling, STARTED) == [3]
        assert _counted(from_first, STARTED) == [5]  # either process answers with the sum
        # Read from Redis by the process that answers, and served once: no series per pid.
        assert sorted(_pending(from_first)) == [
            'switchboard_requests_pending{agent="deploybot",kind="approval"} 0.0',
            'switchboard_requests_pending{agent="deploybot",kind="question"} 0.0',
        ]

        # A sibling that dies is logged and replaced; what it counted still counts.
        os.kill(sibling, signal.SIGKILL)
        poll(lambda: len(_siblings(service)) == 2)
        assert f"API process {sibling} ended (signal SIGKILL): starting another" in service.log()
        replacement = _siblings(service)[1]
        with _stopped(first):
            _start_threads(service.base, 1)  # the new sibling serves
        assert _counted(_scrape(service.base), STARTED) == [6]
        assert len(httpx.get(f"{service.base}/v1/threads").json()) == 6

        # SIGTERM to the first process stops them all, and the metrics directory goes.
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=30) == 0, service.log()
        assert not _alive(replacement)
        assert not shared.exists()


@pytest.mark.timeout(180)
def test_both_processes_take_mail_and_the_sibling_ends_with_a_killed_first_process(
    tmp_path: Path, redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushall()
    smtp_port = free_port()
    (tmp_path / "switchboard.toml").write_text(REGISTRY_TOML)
    env = {
        # The suite's Redis (emptied above): an embedded one would outlive the
        # SIGKILL below, as it does any killed service.
        "REDIS_URL": redis_url,
        "EMAIL_DOMAIN": "sb.test",
        "SMTP_LISTEN": f"127.0.0.1:{smtp_port}",
        "SWITCHBOARD_CONFIG": str(tmp_path / "switchboard.toml"),
    }
    with _two(tmp_path, env) as service:
        first, [sibling] = service.process.pid, _siblings(service)
        shared = _metrics_dir(service)
        with _stopped(first):
            _start_threads(service.base, 1)  # the sibling is up, its channels built
            _send_mail(smtp_port, "<one@example.com>")  # the sibling's, on the first's port
        with _stopped(sibling):
            _send_mail(smtp_port, "<two@example.com>")  # the first process's
        log = service.log()
        assert log.count(f"SMTP server listening on 127.0.0.1:{smtp_port}") == 2
        assert " ERROR " not in log
        assert _alive(sibling)
        assert len(httpx.get(f"{service.base}/v1/threads").json()) == 3

        # No orphan, even after a SIGKILL: the sibling sees its pipe from the first close.
        service.process.kill()
        service.process.wait()
        poll(lambda: not _alive(sibling))
        assert "the first API process is gone: stopping" in service.log()
    # Nobody is left to remove the directory after a SIGKILL (it is in the temp dir).
    shutil.rmtree(shared)


@pytest.mark.parametrize("processes", ["1", "2"])
@pytest.mark.timeout(120)
def test_an_smtp_port_in_use_ends_the_start_with_what_to_change(
    tmp_path: Path, processes: str
) -> None:
    with _taken_port() as port:
        done = _start(tmp_path, processes, EMAIL_DOMAIN="sb.test", SMTP_LISTEN=f"127.0.0.1:{port}")
    assert done.returncode == 2, done.stderr
    assert f"switchboard: SMTP_LISTEN=127.0.0.1:{port}: cannot listen there" in done.stderr
    assert os.strerror(errno.EADDRINUSE).lower() in done.stderr.lower()
    assert "started, serving on the same socket" not in done.stderr
    assert "Traceback" not in done.stderr
    assert "never awaited" not in done.stderr


@contextmanager
def _taken_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _start(tmp_path: Path, processes: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``main.py api`` in the foreground, until it ends by itself."""
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "api"],
        cwd=ROOT,
        env={
            **clean_env(),
            "PORT": str(free_port()),
            "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
            "SWITCHBOARD_API_PROCESSES": processes,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def _send_mail(port: int, message_id: str) -> None:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = ALICE, AGENT, "deploy"
    mail["Message-ID"] = message_id
    mail.set_content("deploy v1.2.3 to production")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(mail)


def _pending(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("switchboard_requests_pending{")]


@pytest.mark.parametrize("processes", ["1", "2"])
@pytest.mark.timeout(120)
def test_a_port_in_use_ends_the_start_as_with_one_process(tmp_path: Path, processes: str) -> None:
    with _taken_port() as port:
        done = _start(tmp_path, processes, PORT=str(port))
    assert done.returncode == STARTUP_FAILURE, done.stderr  # uvicorn's, as before
    assert os.strerror(errno.EADDRINUSE).lower() in done.stderr.lower()
    assert "started, serving on the same socket" not in done.stderr  # no sibling started
    for shared in re.findall(r"every API process's counts, in (\S+)", done.stderr):
        assert not Path(shared).exists()  # removed on the way out
