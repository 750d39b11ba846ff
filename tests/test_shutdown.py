"""Ctrl-C during a tool run: the tool is not killed with the service (its own session), the
worker waits for it up to SWITCHBOARD_SHUTDOWN_GRACE, records its result, and starts no model
call after the signal. Real processes, a signal to the whole process group as a terminal
sends it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from model.events import ToolError, ToolResult
from store.embedded import free_port
from store.threads import ThreadStore
from tests.conftest import ROOT
from tests.fakes.openai_server import FakeOpenAI, step
from tests.process import clean_env, poll

TOOL = """
import os, sys, time
marker = sys.argv[1]
open(marker, "a").write(f"started {os.getpid()}\\n")
time.sleep(float(sys.argv[2]))
open(marker, "a").write("finished\\n")
print("v1.2.3")
"""


def _config(tmp_path: Path, seconds: float) -> str:
    (tmp_path / "tool.py").write_text(TOOL)
    marker = tmp_path / "tool.log"
    return f"""
[agents.deploybot]
module = "agent.examples.deploybot"
prompt = "deploybot/v1"

[agents.deploybot.tools.list_tags]
command = ["{{python}}", "{tmp_path / "tool.py"}", "{marker}", "{seconds}"]

[agents.deploybot.tools.deploy]
command = ["{{python}}", "-c", "print('deployed')"]
approvers = ["rest:*"]

[agents.deploybot.tools.rollback]
command = ["{{python}}", "-c", "print('ok')"]
"""


def _brain(messages: list[dict[str, str]]) -> dict[str, Any]:
    last = messages[-1]["content"].strip().splitlines()[-1]
    if last.startswith('<result tool="list_tags">'):
        return step("done_for_now", message="tags listed")
    return step("list_tags")


@contextmanager
def _service(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``main.py`` (API + worker) as its own process group, like a shell's foreground job."""
    port = free_port()
    log = (tmp_path / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py")],
        cwd=ROOT,
        env={**clean_env(), "PORT": str(port), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        poll(healthy, within=30)
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


def _start(base: str) -> str:
    return str(
        httpx.post(f"{base}/v1/threads", json={"message": "which tags?"}).json()["thread_id"]
    )


def _ctrl_c(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)


@pytest.fixture
def env(tmp_path: Path, redis_url: str, fake_llm: FakeOpenAI) -> dict[str, str]:
    fake_llm.brain = _brain
    return {
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "test-key",
        "SWITCHBOARD_CONFIG": str(tmp_path / "switchboard.toml"),
    }


async def test_ctrl_c_waits_for_the_tool_and_calls_no_model(
    tmp_path: Path, env: dict[str, str], store: ThreadStore, fake_llm: FakeOpenAI
) -> None:
    (tmp_path / "switchboard.toml").write_text(_config(tmp_path, seconds=2))
    marker = tmp_path / "tool.log"
    with _service(tmp_path, env) as (process, base):
        tid = _start(base)
        poll(lambda: marker.exists())
        calls = len(fake_llm.requests)
        _ctrl_c(process)
        assert process.wait(timeout=30) == 0, (tmp_path / "service.log").read_text()
    assert [line.split()[0] for line in marker.read_text().splitlines()] == ["started", "finished"]
    assert len(fake_llm.requests) == calls  # no model call after the signal
    view = await store.thread(tid)
    results = [e for e in view.events if isinstance(e, (ToolResult, ToolError))]
    assert [(type(e).__name__, e.tool) for e in results] == [("ToolResult", "list_tags")]
    assert view.state.lease_owner is None  # handed over, not left to run out


async def test_a_tool_longer_than_the_grace_is_left_running_on_its_own(
    tmp_path: Path, env: dict[str, str], store: ThreadStore
) -> None:
    (tmp_path / "switchboard.toml").write_text(_config(tmp_path, seconds=120))
    marker = tmp_path / "tool.log"
    with _service(tmp_path, {**env, "SWITCHBOARD_SHUTDOWN_GRACE": "0.2"}) as (process, base):
        tid = _start(base)
        poll(lambda: marker.exists() and marker.read_text().endswith("\n"))
        _ctrl_c(process)
        assert process.wait(timeout=60) == 0  # it did not wait two minutes for the tool
    pid = int(marker.read_text().split()[1])
    try:
        os.kill(pid, 0)  # ... and the tool was not killed with it: it runs in its own session
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    view = await store.thread(tid)
    assert not [e for e in view.events if isinstance(e, ToolError)]
