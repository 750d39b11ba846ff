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
) -> Iterator[ServiceProcess]:
    """Start the service with an embedded Redis under ``tmp_path``; stop it with SIGINT."""
    port = port or free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_OURS) and k not in _ALSO}
    clean.update(PORT=str(port), SWITCHBOARD_DATA_DIR=str(tmp_path / "data"))
    if config is not None:
        (tmp_path / "switchboard.toml").write_text(config)
        clean["SWITCHBOARD_CONFIG"] = str(tmp_path / "switchboard.toml")
    clean.update(env)
    running = ServiceProcess(base=f"http://127.0.0.1:{port}", log_path=tmp_path / "service.log")
    with running.log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), *args],
            cwd=cwd,
            env=clean,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        poll(lambda: _healthy(running) and (ready is None or ready(running)), process, running)
        yield running
    finally:
        process.send_signal(stop)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
