"""The deployment files, checked without a Docker engine: docker-compose.yml against the
Compose Specification's JSON schema (the copy check-jsonschema vendors, so nothing is fetched),
and what the schema cannot say: one image, healthchecks, SMTP reachable, the image complete."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from agent.config import Registry
from agent.llm import NoLLM
from agent.worker import Worker, WorkerSettings
from store.threads import ThreadStore
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
SWITCHBOARD = ("api", "worker")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_file_follows_the_compose_specification() -> None:
    check = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [check, "--builtin-schema", "vendor.compose-spec", COMPOSE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_one_image_built_once_for_api_and_worker() -> None:
    services = _compose()["services"]
    assert {services[s]["image"] for s in SWITCHBOARD} == {"switchboard:local"}
    assert [s for s in services if "build" in services[s]] == ["api"]


def test_api_and_worker_have_healthchecks() -> None:
    services = _compose()["services"]
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    worker = services["worker"]
    alive = worker["environment"]["SWITCHBOARD_ALIVE_FILE"]
    assert alive in " ".join(worker["healthcheck"]["test"])


def test_smtp_is_reachable_from_outside_the_container() -> None:
    api = _compose()["services"]["api"]
    assert api["environment"]["SMTP_LISTEN"] == "0.0.0.0:2525"
    assert "2525:2525" in api["ports"]


def test_readme_states_the_compose_version_the_file_needs() -> None:
    needed = re.search(r"Docker Compose (\d+\.\d+)", COMPOSE.read_text())
    assert needed is not None
    assert f"Docker Compose {needed.group(1)}" in (ROOT / "README.md").read_text()


def test_the_image_carries_every_package_and_runs_without_redis_url() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    for package in packages:
        assert f"COPY {package} {package}" in dockerfile, package
    assert "USER switchboard" in dockerfile
    assert "chown switchboard /data" in dockerfile
    assert "SWITCHBOARD_DATA_DIR=/data" in dockerfile  # the embedded Redis has somewhere to write
    assert "SMTP_LISTEN=0.0.0.0:2525" in dockerfile


async def test_a_worker_touches_its_alive_file(
    tmp_path: Path, store: ThreadStore, registry: Registry
) -> None:
    alive = tmp_path / "worker.alive"
    worker = Worker(
        store,
        registry,
        NoLLM(),
        settings=WorkerSettings(block_ms=50, alive_file=alive),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not alive.exists():
        assert loop.time() < deadline, "the worker never touched its alive file"
        await asyncio.sleep(0.05)
    first = alive.stat().st_mtime_ns
    while alive.stat().st_mtime_ns == first:
        assert loop.time() < deadline, "the alive file is not kept fresh"
        await asyncio.sleep(0.1)
    stop.set()
    await task
