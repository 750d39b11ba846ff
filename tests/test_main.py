"""The README's run command, as a user runs it: a real process, embedded Redis, real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from store.embedded import free_port
from tests.conftest import ROOT
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def running(tmp_path: Path, fake_llm: FakeOpenAI) -> Iterator[tuple[str, Path]]:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "SWITCHBOARD_", "OPENAI_"))
    }
    env.update(
        PORT=str(port),
        SWITCHBOARD_DATA_DIR=str(tmp_path / "data"),
        OPENAI_BASE_URL=fake_llm.base_url,
        OPENAI_API_KEY="test-key",
        SWITCHBOARD_MODEL="fake-model",
    )
    log = (tmp_path / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "main.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "service.log").read_text()
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.1)
        yield base, tmp_path
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _poll(url: str, until: Any, within: float = 15) -> Any:
    deadline = time.monotonic() + within
    while True:
        body = httpx.get(url).json()
        if until(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_run_command_serves_the_deploy_example(running: tuple[str, Path]) -> None:
    base, tmp = running
    r = httpx.post(f"{base}/v1/threads", json={"message": "deploy v1.2.3 to production"})
    assert r.status_code == 201
    tid = r.json()["thread_id"]

    pending = _poll(f"{base}/v1/requests?status=pending", lambda b: len(b) == 1)
    rid = pending[0]["request"]["request_id"]
    assert httpx.post(f"{base}/v1/requests/{rid}", json={"decision": "approve"}).status_code == 200

    thread = _poll(f"{base}/v1/threads/{tid}", lambda b: b["state"]["status"] == "done")
    results = [e for e in thread["events"] if e["type"] == "tool_result"]
    assert [e["output"] for e in results] == ["deployed v1.2.3 to production"]
    assert thread["events"][-1]["type"] == "final_answer"
    assert httpx.get(f"{base}/docs").status_code == 200
    # The embedded Redis keeps its data under the data dir, with AOF on.
    assert any((tmp / "data").rglob("*.aof*"))
    log = (tmp / "service.log").read_text()
    assert "loopback only" in log
    assert "channels on: rest" in log
