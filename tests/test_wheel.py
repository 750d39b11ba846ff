"""The package as a user installs it: build the wheel from a copy of the source, install it
into a fresh virtual environment outside the checkout, and run ``switchboard check`` and
``switchboard serve`` from there.

The fresh environment gets its dependencies from the test environment through a ``.pth``
line instead of downloading them again (that alone takes most of a minute): the wheel itself,
with its data files, modules and console script, is what is installed and exercised.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import httpx
import pytest

from store.embedded import free_port
from tests.conftest import ROOT
from tests.process import clean_env, poll

SKIP = shutil.ignore_patterns(
    ".venv", ".git", "data", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "bench"
)


def _build_and_install(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        check=True,
        capture_output=True,
    )
    [wheel] = dist.glob("switchboard-*.whl")
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Dependencies from the test environment, after the fresh one's own site-packages.
    (Path(purelib) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    return env_dir


# Build, install, three processes: about 10 s on an idle machine, more on a loaded one.
@pytest.mark.timeout(180)
def test_the_wheel_runs_outside_the_checkout(tmp_path: Path) -> None:
    fresh = _build_and_install(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "switchboard.toml", work / "switchboard.toml")
    env = {**clean_env(), "SWITCHBOARD_DATA_DIR": str(work / "data")}

    where = subprocess.run(
        [fresh / "bin" / "python", "-c", "import agent, channels, main; print(agent.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(fresh)), where.stdout  # not the checkout's copy

    check = subprocess.run(
        [fresh / "bin" / "switchboard", "check"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert "agents deploybot (default deploybot)" in check.stdout

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [fresh / "bin" / "switchboard", "serve"],
            cwd=work,
            env={**env, "PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        poll(lambda: _get(f"{base}/healthz") == 200, within=30)
        page = httpx.get(f"{base}/")
        assert page.status_code == 200
        assert "<html" in page.text.lower()  # the console page came with the wheel
        assert _get(f"{base}/docs") == 200
        assert _get(f"{base}/static-offline-docs/swagger-ui.css") == 200
        created = httpx.post(f"{base}/v1/threads", json={"message": "deploy v1.2.3"})
        assert created.status_code == 201, created.text
        url = f"{base}/v1/threads/{created.json()['thread_id']}"
        # No model configured: the run renders its prompt (from the wheel) and asks a human.
        poll(lambda: httpx.get(url).json()["pending"], within=30)
    finally:
        serve.send_signal(signal.SIGINT)
        code = serve.wait(timeout=30)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def _get(url: str) -> int | None:
    try:
        return httpx.get(url).status_code
    except httpx.TransportError:
        return None
