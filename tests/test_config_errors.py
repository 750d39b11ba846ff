"""A wrong setting stops the service at once with one line naming it (exit 2), not a
traceback, and before anything starts: no Redis, no port opened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.process import clean_env


def _start(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=tmp_path,
        env={**clean_env(), "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"), **env},
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
    ],
)
def test_a_wrong_setting_is_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], line: str
) -> None:
    done = _start(tmp_path, env, "api")
    assert done.returncode == 2
    assert done.stderr.strip() == line
    assert not (tmp_path / "data").exists()
