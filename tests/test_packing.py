"""Commands packed by hiredis's C packer: the same bytes as redis-py's, its refusals kept."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from store.connection import connect
from store.packing import HiredisPacking, packed

ARGS: list[tuple[Any, ...]] = [
    ("SET", "k", "välue"),
    ("EVALSHA", "4f4d2abf", 3, b"sb:{th}:state", b"\x00\xff", 1.5, 0.1, -0.0, 2**70),
    ("HSET", "h", "f", memoryview(b"view")),
    ("XADD", "s", "*", "t", ""),
    ("CLIENT SETNAME", "name"),  # a command name with a space: redis-py splits it
    ("SET", "k", bytearray(b"array")),  # hiredis refuses bytearray: redis-py packs it
]


@pytest.mark.parametrize("args", ARGS)
def test_packed_bytes_are_redis_pys(args: tuple[Any, ...]) -> None:
    ours = b"".join(packed(Connection)().pack_command(*args))
    theirs = b"".join(Connection().pack_command(*args))
    assert ours == theirs


@pytest.mark.parametrize("bad", [True, None, object()])
def test_what_redis_py_refuses_is_still_refused(bad: Any) -> None:
    with pytest.raises(DataError):
        packed(Connection)().pack_command("SET", "k", bad)


async def test_the_service_client_packs_with_hiredis_and_talks_to_redis(redis_url: str) -> None:
    client = connect(redis_url, retrying=False)
    try:
        assert issubclass(client.connection_pool.connection_class, HiredisPacking)
        await client.set("sb:test:packing", "välue")
        assert await client.get("sb:test:packing") == "välue".encode()
        pipe = client.pipeline(transaction=True)
        pipe.incr("sb:test:packing:n").incr("sb:test:packing:n")
        assert await pipe.execute() == [1, 2]
    finally:
        await client.delete("sb:test:packing", "sb:test:packing:n")
        await client.aclose()
