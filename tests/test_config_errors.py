"""A wrong setting stops the service at once with one line naming it (exit 2), not a
traceback, and before anything starts: no Redis, no port opened."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import main
from store.embedded import free_port
from tests.conftest import ROOT
from tests.process import clean_env


def _base(tmp_path: Path) -> dict[str, str]:
    return {
        "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
        "SWITCHBOARD_CONFIG": str(ROOT / "switchboard.toml"),
    }


Main = Callable[[dict[str, str], str], tuple[int, str]]


@pytest.fixture
def main_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Main:
    """``main.main([role])`` in this process with ``env`` over a clean environment: its exit
    code and what it wrote to stderr. The checks run before anything starts, so this is
    cheap; test_the_process_exits_2_with_one_line runs the real process once."""

    def run(env: dict[str, str], role: str) -> tuple[int, str]:
        for name in [n for n in os.environ if n not in clean_env()]:
            monkeypatch.delenv(name)
        monkeypatch.chdir(tmp_path)
        for name, value in {**_base(tmp_path), **env}.items():
            monkeypatch.setenv(name, value)
        code = main.main([role])
        return code, capsys.readouterr().err.strip()

    return run


def _start(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=tmp_path,
        env={**clean_env(), **_base(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"SWITCHBOARD_API_TOKEN": "", "HOST": "0.0.0.0"},
            "switchboard: SWITCHBOARD_API_TOKEN: is set but empty: unset it (loopback only) "
            "or give a token",
        ),
        (
            {"SWITCHBOARD_API_TOKENS": "ops"},
            "switchboard: SWITCHBOARD_API_TOKENS: 'ops' has no token: write name:token "
            "(format: name:token,name:token)",
        ),
        (
            {"PORT": "abc"},
            "switchboard: PORT='abc': Input should be a valid integer, unable to parse string "
            "as an integer",
        ),
        (
            {"SWITCHBOARD_API_PROCESSES": "0"},
            "switchboard: SWITCHBOARD_API_PROCESSES='0': Input should be greater than or equal "
            "to 1",
        ),
        (
            {"SWITCHBOARD_LLM_TIMEOUT": "abc"},
            "switchboard: SWITCHBOARD_LLM_TIMEOUT='abc': Input should be a valid number, "
            "unable to parse string as a number",
        ),
        (
            {"REDIS_URL": "notaurl"},
            "switchboard: REDIS_URL='notaurl': not a Redis URL: use redis://host:6379/0, "
            "rediss://host:6380/0 (TLS), unix:///path/to/redis.sock or redis+cluster://host:7000 "
            "(a Redis Cluster); unset for the embedded Redis",
        ),
        (
            {"SWITCHBOARD_PAGE_SECRET": "short"},
            "switchboard: SWITCHBOARD_PAGE_SECRET: is shorter than 16 characters: give a long "
            "random value (python3 -c 'import secrets; print(secrets.token_hex(32))'), or unset it",
        ),
        (
            {"SWITCHBOARD_MODLE": "gpt-4o"},
            "switchboard: SWITCHBOARD_MODLE is not a setting (did you mean SWITCHBOARD_MODEL?)",
        ),
        (
            {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM_NUMBER": "555"},
            "switchboard: TWILIO_FROM_NUMBER='555': use E.164 form (+15551234567)",
        ),
    ],
)
def test_a_wrong_setting_is_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], line: str, main_in_process: Main
) -> None:
    assert main_in_process(env, "api") == (2, line)
    assert not (tmp_path / "data").exists()


def test_the_process_exits_2_with_one_line(tmp_path: Path) -> None:
    done = _start(tmp_path, {"SWITCHBOARD_API_TOKEN": "", "HOST": "0.0.0.0"}, "api")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("switchboard: SWITCHBOARD_API_TOKEN: is set but empty")


def test_a_worker_without_redis_url_says_how_to_join(main_in_process: Main) -> None:
    code, line = main_in_process({}, "worker")
    assert code == 2
    assert line.startswith("switchboard: REDIS_URL is not set: a worker alone would use")
    assert "REDIS_URL=unix://<SWITCHBOARD_DATA_DIR>/redis.sock" in line


@pytest.mark.parametrize(
    ("approver", "error"),
    [
        ("slak:U1", "'slak:U1': unknown channel 'slak' (did you mean 'slack'?"),
        ("sms:123", "'sms:123': sms needs a phone number in E.164 form (+15551234567)"),
    ],
)
def test_an_approver_typo_stops_the_start(
    tmp_path: Path, approver: str, error: str, main_in_process: Main
) -> None:
    toml = (ROOT / "switchboard.toml").read_text().replace('["rest:*"]', f'["{approver}"]')
    (tmp_path / "switchboard.toml").write_text(toml)
    code, line = main_in_process({"SWITCHBOARD_CONFIG": "switchboard.toml"}, "api")
    assert code == 2
    assert line.startswith(
        "switchboard: switchboard.toml: agents.deploybot.tools.deploy.approvers: "
    )
    assert error in line


def test_an_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = _start(tmp_path, {"REDIS_URL": url}, "api")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith(f"switchboard: cannot reach REDIS_URL={url}: ")
    assert "Traceback" not in done.stderr
