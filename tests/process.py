"""The service as a user runs it: ``python main.py`` in a real process, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from store import embedded
from store.embedded import free_port
from tests.conftest import ROOT

T = TypeVar("T")

# Settings of the machine running the tests must not leak into the service under test.
_OURS = ("REDIS_", "SWITCHBOARD_", "OPENAI_", "SLACK_", "EMAIL_", "SMTP_", "TWILIO_", "SMS_")
_ALSO = ("PUBLIC_BASE_URL", "HOST", "PORT")


@dataclass(frozen=True)
class ServiceProcess:
    base: str
    """http://127.0.0.1:<port>"""
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text()


@contextmanager
def service_process(
    tmp_path: Path,
    env: Mapping[str, str],
    *,
    config: str | None = None,
    args: tuple[str, ...] = (),
    port: int | None = None,
    cwd: Path = ROOT,
    stop: signal.Signals = signal.SIGINT,
    ready: Callable[[ServiceProcess], bool] | None = None,
    within: float = 30,
) -> Iterator[ServiceProcess]:
    """Start the service with an embedded Redis under ``tmp_path``; stop it with SIGINT;
    ``within`` seconds to be healthy (and ``ready``)."""
    port = port or free_port()
    clean = clean_env()
    clean.update(PORT=str(port), SWITCHBOARD_DATA_DIR=str(tmp_path / "data"))
    if config is not None:
        (tmp_path / "switchboard.toml").write_text(config)
        clean["SWITCHBOARD_CONFIG"] = str(tmp_path / "switchboard.toml")
    clean.update(env)
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), *args],
            cwd=cwd,
            env=clean,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = ServiceProcess(f"http://127.0.0.1:{port}", log_path, process)
    try:
        poll(
            lambda: _healthy(running) and (ready is None or ready(running)),
            process,
            running,
            within,
        )
        yield running
    finally:
        _stop(process, stop)


def clean_env() -> dict[str, str]:
    """This process's environment without the settings of the machine running the tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_OURS) and k not in _ALSO}


@contextmanager
def worker_process(log_path: Path, env: Mapping[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``python main.py worker`` with ``env`` over a clean environment; SIGINT at the end."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "worker"],
            cwd=ROOT,
            env={**clean_env(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        _stop(process, signal.SIGINT)


def _stop(process: subprocess.Popen[bytes], how: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(how)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class RestartableRedis:
    """A redis-server on a fixed loopback port with its append-only file under ``data_dir``:
    killed with SIGKILL and started again on the same port, it comes back with its data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                embedded.server_binary(),
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)),
                # always: every write acknowledged is on disk before a SIGKILL can come
                *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        embedded.wait_ready(self.url, self._process)

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait()

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process, signal.SIGTERM)


def _healthy(service: ServiceProcess) -> bool:
    try:
        return httpx.get(f"{service.base}/healthz").status_code == 200
    except httpx.TransportError:
        return False


def poll(
    check: Callable[[], T | None],
    process: subprocess.Popen[bytes] | None = None,
    service: ServiceProcess | None = None,
    within: float = 30,
) -> T:
    """Call ``check`` until it returns something truthy; fail if the service died."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if process is not None and service is not None:
            assert process.poll() is None, service.log()
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def model_env(base_url: str) -> dict[str, str]:
    """Settings that point the service at the fake model server."""
    return {
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "test-key",
        "SWITCHBOARD_MODEL": "fake-model",
    }


def ask_and_approve(base: str, message: str = "deploy v1.2.3 to production") -> tuple[str, str]:
    """Start a thread that asks for an approval, and approve it: (thread id, request id)."""
    tid = str(httpx.post(f"{base}/v1/threads", json={"message": message}).json()["thread_id"])
    pending = poll(lambda: httpx.get(f"{base}/v1/requests?status=pending").json())
    rid = str(pending[0]["request"]["request_id"])
    assert httpx.post(f"{base}/v1/requests/{rid}", json={"decision": "approve"}).is_success
    return tid, rid
