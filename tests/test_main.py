"""The README's run command, as a user runs it: a real process, embedded Redis, real HTTP."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.fakes.openai_server import FakeOpenAI
from tests.process import ServiceProcess, poll, service_process


@pytest.fixture
def running(tmp_path: Path, fake_llm: FakeOpenAI) -> Iterator[ServiceProcess]:
    env = {
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "test-key",
        "SWITCHBOARD_MODEL": "fake-model",
    }
    with service_process(tmp_path, env) as service:
        yield service


def _get(url: str, until: Any) -> Any:
    return poll(lambda: (body := httpx.get(url).json()) and until(body) and body)


def test_run_command_serves_the_deploy_example(running: ServiceProcess, tmp_path: Path) -> None:
    base = running.base
    r = httpx.post(f"{base}/v1/threads", json={"message": "deploy v1.2.3 to production"})
    assert r.status_code == 201
    tid = r.json()["thread_id"]

    pending = _get(f"{base}/v1/requests?status=pending", lambda b: len(b) == 1)
    rid = pending[0]["request"]["request_id"]
    assert httpx.post(f"{base}/v1/requests/{rid}", json={"decision": "approve"}).status_code == 200

    thread = _get(f"{base}/v1/threads/{tid}", lambda b: b["state"]["status"] == "done")
    results = [e for e in thread["events"] if e["type"] == "tool_result"]
    assert [e["output"] for e in results] == ["deployed v1.2.3 to production"]
    assert thread["events"][-1]["type"] == "final_answer"
    assert httpx.get(f"{base}/docs").status_code == 200
    # The embedded Redis keeps its data under the data dir, with AOF on.
    assert any((tmp_path / "data").rglob("*.aof*"))
    assert "loopback only" in running.log()
    assert "channels on: rest" in running.log()


def test_sigterm_stops_the_embedded_redis_too(tmp_path: Path) -> None:
    """docker stop and systemd send SIGTERM: the clean-up must run as it does on Ctrl-C."""
    with service_process(tmp_path, {}, stop=signal.SIGTERM) as service:
        sock = tmp_path / "data" / "redis.sock"
        assert redis.Redis(unix_socket_path=str(sock)).ping()
    assert "Traceback" not in service.log()
    with pytest.raises(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(sock), socket_connect_timeout=1).ping()
