"""Concurrent commands share a round trip (store/coalesce.py), and each caller still gets
what it would have got alone: its reply, its error, a connection error without a resend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from store import connection
from store.coalesce import CoalescingRedis
from store.connection import INFRA_ERRORS


class Wire:
    """Counts the writes to Redis (a command or a batch each) and the commands in them."""

    def __init__(self) -> None:
        self.writes = 0
        self.batches: list[list[bytes]] = []


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    seen = Wire()
    original = AbstractConnection._send_packed_command

    async def counted(self: Any, command: Any) -> None:
        seen.writes += 1
        seen.batches.append(list(_names(b"".join(bytes(part) for part in command))))
        await original(self, command)

    monkeypatch.setattr(AbstractConnection, "_send_packed_command", counted)
    return seen


def _names(packed: bytes) -> Iterator[bytes]:
    """The command names in a packed RESP write."""
    lines = packed.split(b"\r\n")
    i = 0
    while i < len(lines) - 1:
        count = int(lines[i][1:])
        yield lines[i + 2].upper()
        i += 1 + 2 * count


@pytest.fixture
async def plain(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connection.connect(redis_url, retrying=False)
    await client.flushall()
    yield client
    await client.aclose()


async def test_the_service_gets_a_coalescing_client(redis_url: str) -> None:
    for retrying in (False, True):
        client = connection.connect(redis_url, retrying=retrying)
        assert isinstance(client, CoalescingRedis)
        await client.aclose()


async def test_concurrent_commands_share_one_round_trip(plain: aioredis.Redis, wire: Wire) -> None:
    await plain.ping()  # connected, so the count below has no handshake in it
    before = wire.writes
    replies = await asyncio.gather(*(plain.incr(f"n{i % 4}") for i in range(20)))
    assert wire.writes - before == 1
    assert sorted(replies) == sorted([1, 2, 3, 4, 5] * 4)
    # A lone command goes as one, as before.
    before = wire.writes
    assert await plain.get("n0") == b"5"
    assert wire.writes - before == 1


async def test_commands_of_later_turns_wait_for_the_batch_in_flight(
    plain: aioredis.Redis, redis_url: str, wire: Wire
) -> None:
    """While a batch waits for its replies, the commands of the turns after it gather into
    one next batch, sent once those replies are in (not one write per turn)."""
    await plain.ping()
    pauser = aioredis.Redis.from_url(redis_url)
    await pauser.client_pause(10_000, all=False)  # writes are held: the first batch waits
    try:
        before = wire.writes
        first = asyncio.gather(plain.incr("a"), plain.incr("a"))
        await asyncio.sleep(0.01)
        later = []
        for _ in range(5):  # five turns, one command each
            later.append(asyncio.ensure_future(plain.incr("b")))
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert wire.writes - before == 1  # the second batch is held until the first lands
    finally:
        await pauser.client_unpause()
        await pauser.aclose()
    assert await first == [1, 2]
    assert sorted(await asyncio.gather(*later)) == [1, 2, 3, 4, 5]
    ours = [b for b in wire.batches[before:] if b != [b"CLIENT"]]  # less the unpause
    assert ours == [[b"INCRBY"] * 2, [b"INCRBY"] * 5]


async def test_each_reply_reaches_its_caller(plain: aioredis.Redis) -> None:
    await plain.hset("h", mapping={"a": "1", "b": "2"})
    await plain.rpush("l", "x", "y")

    async def one(i: int) -> Any:
        await plain.set(f"k{i}", f"v{i}")
        return await plain.get(f"k{i}")

    replies = await asyncio.gather(
        plain.hgetall("h"),
        *(one(i) for i in range(40)),
        plain.lrange("l", 0, -1),
        plain.exists("h", "l", "nope"),
        plain.get("nope"),
    )
    assert replies[0] == {b"a": b"1", b"b": b"2"}  # the response callback applied
    assert replies[1:41] == [f"v{i}".encode() for i in range(40)]
    assert replies[41:] == [[b"x", b"y"], 2, None]


async def test_an_error_reply_fails_only_its_caller(plain: aioredis.Redis, wire: Wire) -> None:
    await plain.set("s", "text")
    failing = plain.register_script("return redis.error_reply('no such thing')")
    await plain.ping()
    before = wire.writes
    replies = await asyncio.gather(
        plain.incr("n"),
        plain.lpush("s", "x"),  # WRONGTYPE
        plain.evalsha("0" * 40, 0),  # NOSCRIPT
        failing(),
        plain.get("s"),
        plain.incr("n"),
        return_exceptions=True,
    )
    assert wire.writes - before == 3  # the batch; then the failing script loaded and run
    assert (replies[0], replies[4], replies[5]) == (1, b"text", 2)
    assert isinstance(replies[1], ResponseError)
    assert "WRONGTYPE" in str(replies[1])
    assert isinstance(replies[2], NoScriptError)
    assert isinstance(replies[3], ResponseError)
    assert "no such thing" in str(replies[3])


async def test_scripts_lost_by_redis_are_reloaded_per_caller(plain: aioredis.Redis) -> None:
    script = plain.register_script("return redis.call('INCR', KEYS[1])")
    assert await script(keys=["n"]) == 1
    await plain.script_flush()
    replies = await asyncio.gather(*(script(keys=[f"n{i % 2}"]) for i in range(6)))
    # Every caller ran its script once: the NOSCRIPT reply made it load and run it again,
    # and it alone.
    assert sorted(replies) == [1, 1, 2, 2, 3, 3]
    assert await plain.mget("n0", "n1") == [b"3", b"3"]


async def test_a_cancelled_caller_leaves_the_connection_in_step(plain: aioredis.Redis) -> None:
    await plain.set("a", "1")
    await plain.set("b", "2")
    gone = asyncio.ensure_future(plain.get("a"))
    kept = asyncio.ensure_future(plain.get("b"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # both are in the batch now, sent or about to be
    gone.cancel()
    assert await kept == b"2"
    # The pool's connections answer the right replies afterwards.
    replies = await asyncio.gather(*(plain.get(k) for k in ("a", "b", "a", "b")))
    assert replies == [b"1", b"2", b"1", b"2"]


async def test_blocking_reads_are_not_held_up(plain: aioredis.Redis, wire: Wire) -> None:
    await plain.xgroup_create("s", "g", id="0", mkstream=True)
    read = asyncio.ensure_future(plain.xreadgroup("g", "c", {"s": ">"}, count=1, block=3_000))
    popped: asyncio.Future[Any] = asyncio.ensure_future(plain.blpop(["q"], timeout=3))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    # Commands issued while the blocking ones wait are answered at once...
    assert await asyncio.gather(*(plain.incr("n") for _ in range(5))) == [1, 2, 3, 4, 5]
    # ...and the writes that wake them up come through the same client.
    await asyncio.gather(plain.xadd("s", {"t": "x"}), plain.rpush("q", "job"))
    got: Any = await read
    assert got[0][1][0][1] == {b"t": b"x"}
    assert tuple(await popped) == (b"q", b"job")
    assert time.monotonic() - start < 2
    # Each blocking command was a write of its own, never part of a batch.
    blocking = [b for b in wire.batches if b"XREADGROUP" in b or b"BLPOP" in b]
    assert sorted(blocking) == [[b"BLPOP"], [b"XREADGROUP"]]


async def test_pipelines_join_the_batch_each_in_order(plain: aioredis.Redis, wire: Wire) -> None:
    await plain.set("s", "text")
    await plain.ping()

    async def pipelined(i: int) -> list[Any]:
        pipe = plain.pipeline(transaction=False)
        pipe.incr(f"p{i}").hset(f"h{i}", "f", i).hgetall(f"h{i}").incr(f"p{i}")
        return await pipe.execute()

    before = wire.writes
    replies = await asyncio.gather(plain.incr("n"), *(pipelined(i) for i in range(8)))
    assert wire.writes - before == 1  # one command and eight pipelines: one write
    assert wire.batches[-1][:5] == [b"INCRBY", b"INCRBY", b"HSET", b"HGETALL", b"INCRBY"]
    assert replies[0] == 1
    # Each pipeline's replies in its order, response callbacks applied.
    assert replies[1:] == [[1, 1, {b"f": str(i).encode()}, 2] for i in range(8)]


async def test_a_pipelines_error_replies_are_as_redis_py_gives_them(plain: aioredis.Redis) -> None:
    await plain.set("s", "text")
    pipe = plain.pipeline(transaction=False)
    pipe.incr("n").lpush("s", "x").evalsha("0" * 40, 0).incr("n")
    replies = await pipe.execute(raise_on_error=False)
    assert (replies[0], replies[3]) == (1, 2)
    assert isinstance(replies[1], ResponseError)
    assert isinstance(replies[2], NoScriptError)
    pipe = plain.pipeline(transaction=False)
    pipe.incr("n").lpush("s", "x")
    with pytest.raises(ResponseError, match=r"Command # 2 \(LPUSH s x\) of pipeline"):
        await pipe.execute()
    assert await plain.get("n") == b"3"  # the commands around the error ran
    assert await pipe.execute() == []  # emptied, as redis-py leaves it


async def test_transactions_and_blocking_pipelines_go_alone(
    plain: aioredis.Redis, wire: Wire
) -> None:
    await plain.ping()

    async def transaction() -> list[Any]:
        pipe = plain.pipeline(transaction=True)
        pipe.incr("t").incr("t")
        return await pipe.execute()

    async def blocking() -> list[Any]:
        pipe = plain.pipeline(transaction=False)
        pipe.blpop(["q"], timeout=0.05).incr("b")
        return await pipe.execute()

    before = len(wire.batches)
    replies = await asyncio.gather(transaction(), blocking(), plain.incr("n"), plain.incr("n"))
    assert replies == [[1, 2], [None, 1], 1, 2]
    # (New connections' handshakes, CLIENT SETINFO and the like, are writes of their own.)
    batches = sorted(b for b in wire.batches[before:] if b"INCRBY" in b)
    assert batches == [
        [b"BLPOP", b"INCRBY"],
        [b"INCRBY", b"INCRBY"],
        [b"MULTI", b"INCRBY", b"INCRBY", b"EXEC"],
    ]


class Dropper:
    """A server that reads what it is sent, answers the first ``answer`` commands of each
    connection with +OK, then closes it: a Redis that went away in the middle of a batch."""

    def __init__(self, answer: int) -> None:
        self.answer = answer
        self.received: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        try:
            while True:
                if answered < self.answer:
                    header = await reader.readline()
                else:  # what else arrives, recorded and not answered
                    header = await asyncio.wait_for(reader.readline(), 0.1)
                if not header:
                    return
                parts = []
                for _ in range(int(header[1:])):
                    size = int((await reader.readline())[1:])
                    parts.append((await reader.readexactly(size + 2))[:-2])
                if parts[0].upper() in (b"HELLO", b"CLIENT", b"SELECT", b"PING"):
                    writer.write(b"+PONG\r\n" if parts[0].upper() == b"PING" else b"+OK\r\n")
                    continue
                self.received.append(b" ".join(parts))
                if answered < self.answer:
                    answered += 1
                    writer.write(b"+OK\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def test_a_dropped_connection_fails_the_batch_and_sends_nothing_twice() -> None:
    server = Dropper(answer=1)
    client = connection.connect(await server.start(), retrying=False)
    try:
        replies = await asyncio.gather(
            *(client.set(f"k{i}", "v") for i in range(5)), return_exceptions=True
        )
        # The first reply came before the connection closed; the rest fail, as a lone
        # command would on this client, and none was sent again.
        assert replies[0] is True
        assert all(isinstance(r, INFRA_ERRORS) for r in replies[1:]), replies
        assert sorted(server.received) == sorted(f"SET k{i} v".encode() for i in range(5))
    finally:
        await client.aclose()
        await server.stop()


async def test_a_retrying_client_sends_again_only_what_had_no_reply() -> None:
    server = Dropper(answer=1)
    url = await server.start()
    pool = aioredis.BlockingConnectionPool.from_url(url, retry=Retry(NoBackoff(), 3))
    client = CoalescingRedis.from_pool(pool)
    try:
        replies = await asyncio.gather(*(client.set(f"k{i}", "v") for i in range(3)))
        # Each try answers one command and drops the connection: k0 on the first, then
        # k1, then k2; nothing answered is sent again.
        assert replies == [True, True, True]
        assert server.received == [
            b"SET k0 v", b"SET k1 v", b"SET k2 v",
            b"SET k1 v", b"SET k2 v",
            b"SET k2 v",
        ]  # fmt: skip
    finally:
        await client.aclose()
        await server.stop()


async def test_a_batch_left_unanswered_times_out_once_as_redis_py_says_it() -> None:
    # The batch's replies share one deadline, the connection's socket timeout (the
    # Dropper waits longer than that before it drops the connection).
    server = Dropper(answer=0)
    url = await server.start()
    pool = aioredis.BlockingConnectionPool.from_url(
        url, socket_timeout=0.03, retry=Retry(NoBackoff(), 0)
    )
    client = CoalescingRedis.from_pool(pool)
    try:
        replies = await asyncio.gather(
            *(client.set(f"k{i}", "v") for i in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, RedisTimeoutError) for r in replies), replies
        assert sorted(server.received) == [b"SET k0 v", b"SET k1 v", b"SET k2 v"]
    finally:
        await client.aclose()
        await server.stop()
