"""One round trip for the commands that concurrent tasks issue in the same event-loop turn.

A worker runs up to 32 threads at once and the API serves many requests at once; each of
their commands used to be a round trip of its own, with redis-py's per-command machinery
around it (a connection taken from the pool and given back, a retry wrapper, a task for the
send's timeout, one ``send`` syscall). ``CoalescingRedis`` queues a single command (or a
script's EVALSHA) instead, and at the end of the loop turn sends everything queued as one
non-transactional pipeline on one connection: one write, the replies read in order, each
handed to its own caller. What ioredis calls auto-pipelining.

Each caller keeps what it had alone:

- its own reply, or its own error: an error reply (NOSCRIPT, a script's ``error_reply``,
  WRONGTYPE) fails only the command it answers, and the script helper reloads on NOSCRIPT
  as before;
- on a connection error or timeout, every command of the batch still unanswered fails with
  that exception (``INFRA_ERRORS``), and the connection's ``Retry`` decides, for the batch as
  it would for one command, whether they go again. A plain client (no retries) therefore
  never sends a command twice: a fenced commit whose reply was lost is not repeated. A
  retrying client sends again only the commands whose replies it has not read.

A non-transactional pipeline (``pipeline(transaction=False)``: a script with the wake-ups
and index writes that follow it, an outbox settle) joins the turn's batch the same way, its
commands together and in order, its replies and error replies handed back as redis-py's
pipeline hands them: it would otherwise take a connection from the pool, wrap its exchange
in redis-py's retry and metrics machinery and make a write of its own (about 180 µs of CPU a
pipeline with 32 at once, against some 40 a command in a batch).

Not coalesced, sent as before on a connection of their own: blocking commands (a blocking
XREAD/XREADGROUP, BLPOP and the like, WAIT), which would hold back every reply queued
behind them; commands that change or depend on the state of a connection (SELECT, AUTH,
CLIENT, MULTI/EXEC/WATCH, the subscribe family, MONITOR...); every command of a client
bound to one connection; transactions (MULTI/EXEC pipelines, or one that WATCHes), which are
one round trip already; and a pipeline holding any of the commands above. Pub/sub has its own
connection.

With the OpenTelemetry redis instrumentation installed (tracing on), commands go one by one
through redis-py as before: the instrumentation makes its span per call of
``Redis.execute_command``, and a span that covers a shared round trip would say nothing
about the command it names.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import AbstractConnection
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

_BLOCKING = frozenset(
    {
        "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX",
        "BZMPOP", "WAIT", "WAITAOF",
    }
)  # fmt: skip
"""Commands that may make the server hold the reply: everything queued behind one would
wait with it."""

_MAY_BLOCK = frozenset({"XREAD", "XREADGROUP"})
"""Blocking only with a BLOCK argument (the workers' and senders' stream reads)."""
_BLOCK_WORDS = ("BLOCK", b"BLOCK", "block", b"block")

_STATEFUL = frozenset(
    {
        "SELECT", "AUTH", "HELLO", "CLIENT", "RESET", "QUIT", "READONLY", "READWRITE",
        "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SUBSCRIBE", "UNSUBSCRIBE",
        "PSUBSCRIBE", "PUNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR", "SYNC",
        "PSYNC", "DEBUG", "SHUTDOWN",
    }
)  # fmt: skip
"""Commands about the connection they are sent on (or, DEBUG SLEEP and SHUTDOWN, that stall
the server): the connection the pool lends next is not the same one."""


def _alone_by_name(name: object) -> bool | None:
    """True: never coalesced; False: always; None: it depends on the arguments."""
    word = name.decode() if isinstance(name, bytes) else str(name)
    word = word.split(" ", 1)[0].upper()
    if word in _MAY_BLOCK:
        return None
    return word in _BLOCKING or word in _STATEFUL


class _Call:
    __slots__ = ("args", "future", "options")

    def __init__(
        self, args: tuple[Any, ...], options: Mapping[str, Any], future: asyncio.Future[Any]
    ) -> None:
        self.args = args
        self.options = options
        self.future = future


class CoalescingRedis(aioredis.Redis):
    """A ``redis.asyncio.Redis`` whose single commands from concurrent tasks share round
    trips (see the module doc); everything else about the client is redis-py's."""

    def __init__(self, *, connection_pool: aioredis.ConnectionPool) -> None:
        super().__init__(connection_pool=connection_pool)
        self._queued: list[_Call] | None = None
        """The commands waiting for this turn's first one to send them; None: no turn open."""
        self._alone: dict[object, bool | None] = {}
        self._batches: set[asyncio.Task[None]] = set()
        """The batches in flight: the loop keeps only weak references to tasks."""
        self._landed: asyncio.Future[None] | None = None
        """Resolved when the batch in flight has its replies (None: none in flight); a turn
        that opens meanwhile keeps its batch open until then (``_rest_of_turn``)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.connection is not None or _traced() or self._sent_alone(args):
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        queued = self._queued
        if queued is not None:
            future = asyncio.get_running_loop().create_future()
            queued.append(_Call(args, options, future))
            return await future
        others = await self._rest_of_turn()
        if not others:
            # Alone in its turn: redis-py's own way, without the cost of a batch.
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        own = _Call(args, options, asyncio.get_running_loop().create_future())
        self._send([own, *others])
        return await own.future

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        if transaction or self.connection is not None:
            return super().pipeline(transaction, shard_hint)
        return _Pipelined(self, shard_hint)

    async def _rest_of_turn(self) -> list[_Call]:
        """Open this turn's batch and wait out the turn (one pass of the loop: the other
        tasks woken with this one, by the replies of the previous batch say, run first and
        queue theirs), and, while a batch is still in flight, until its replies are in:
        what the tasks queued meanwhile. The caller sends it, with its own.

        One batch in flight, not one per turn: under load a turn holds a few commands, the
        next batch is on the wire before the last one's replies are back, and each batch
        costs the same write, read, connection and task however few commands it carries.
        Waiting for the replies lets the batch grow with the load instead (the commands
        would queue behind the last batch inside Redis anyway); with no batch in flight
        nothing waits longer than the turn."""
        queued: list[_Call] = []
        self._queued = queued
        try:
            await asyncio.sleep(0)
            while (landed := self._landed) is not None:
                await asyncio.shield(landed)
        except asyncio.CancelledError:
            self._queued = None
            if queued:
                self._send(queued)
            raise
        self._queued = None
        return queued

    async def _join(self, calls: list[_Call]) -> None:
        """Queue ``calls`` together, in order, in this turn's batch."""
        queued = self._queued
        if queued is not None:
            queued.extend(calls)
            return
        others = await self._rest_of_turn()
        self._send([*calls, *others])

    def coalesces(self, stack: Sequence[tuple[tuple[Any, ...], Mapping[str, Any]]]) -> bool:
        """Whether a pipeline's commands may join a batch (none is sent alone)."""
        return not _traced() and not any(self._sent_alone(args) for args, _ in stack)

    def _sent_alone(self, args: tuple[Any, ...]) -> bool:
        name = args[0]
        try:
            alone = self._alone[name]
        except KeyError:
            alone = self._alone[name] = _alone_by_name(name)
        if alone is None:
            return any(a in _BLOCK_WORDS for a in args[1:])
        return alone

    def _send(self, batch: list[_Call]) -> None:
        """The batch goes in a task of its own: a caller that gives up (a request cancelled)
        takes no one else's reply with it."""
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._exchange(batch))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)
        if self._landed is None:
            landed = self._landed = loop.create_future()
            task.add_done_callback(lambda _: self._land(landed))

    def _land(self, landed: asyncio.Future[None]) -> None:
        if self._landed is landed:
            self._landed = None
        landed.set_result(None)

    async def _exchange(self, batch: list[_Call]) -> None:
        try:
            pool = self.connection_pool
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:

                async def attempt() -> None:
                    await self._send_and_read(conn, batch)

                async def failed(error: Exception) -> None:
                    await conn.disconnect(error=error)

                await conn.retry.call_with_retry(attempt, failed)
            finally:
                await pool.release(conn)
        except BaseException as exc:
            # Whatever ended the exchange (the server gone, a timeout, no free connection,
            # the task cancelled at shutdown) ends every command still waiting for a reply;
            # nothing is sent again. A cancelled exchange is told as one to its callers.
            for call in batch:
                if not call.future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        call.future.cancel()
                    else:
                        call.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    async def _send_and_read(self, conn: AbstractConnection, batch: list[_Call]) -> None:
        """One try: send the commands that have no reply yet, in one write, and read theirs.
        A caller that gave up (cancelled) still has its reply read, so the connection stays
        in step; on a retry its command is not sent again."""
        todo = [call for call in batch if not call.future.done()]
        if not todo:
            return
        await conn.send_packed_command(conn.pack_commands([call.args for call in todo]))
        # One deadline, the connection's socket timeout, for all the batch's replies rather
        # than one per reply: redis-py arms (and cancels) a timer for each read, about a
        # sixth of the CPU of a batch; the replies of one write come back together.
        try:
            async with asyncio.timeout(conn.socket_timeout):
                await self._read_replies(conn, todo)
        except TimeoutError:
            # As redis-py's own read says it (read_response disconnected on the cancel).
            raise RedisTimeoutError(f"Timeout reading from {conn._host_error()}") from None

    async def _read_replies(self, conn: AbstractConnection, todo: list[_Call]) -> None:
        callbacks = self.response_callbacks
        for call in todo:
            options = call.options
            try:
                reply = await conn.read_response(
                    disable_decoding=NEVER_DECODE in options, timeout=math.inf
                )  # math.inf: no timer of its own (see the caller)
            except ResponseError as exc:
                # An error reply: the connection is in step, the next reply is the next
                # command's. Only this caller hears of it.
                if EMPTY_RESPONSE in options:
                    _settle(call.future, options[EMPTY_RESPONSE])
                else:
                    _fail(call.future, exc)
                continue
            if call.args[0] not in callbacks:  # EVALSHA and the like: the reply as read
                _settle(call.future, reply)
                continue
            try:
                result = self._parsed(call.args[0], options, reply)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:  # a reply callback's own error: this caller's too
                _fail(call.future, exc)
                continue
            _settle(call.future, result)

    def _parsed(self, name: Any, options: Mapping[str, Any], reply: Any) -> Any:
        """What ``Redis.parse_response`` makes of a reply once read: the command's response
        callback, given the command's options less those meant for the read itself."""
        callback = self.response_callbacks.get(name)
        if callback is None:
            return reply
        if not options:
            return callback(reply)
        rest = {k: v for k, v in options.items() if k not in (NEVER_DECODE, EMPTY_RESPONSE, "keys")}
        return callback(reply, **rest)


class _Pipelined(Pipeline):
    """A non-transactional pipeline whose commands join its client's batch (module doc)."""

    def __init__(self, client: CoalescingRedis, shard_hint: str | None) -> None:
        super().__init__(client.connection_pool, client.response_callbacks, False, shard_hint)
        self._client = client

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        if (
            not stack
            or self.explicit_transaction
            or self.watching
            or self.connection is not None
            or self.scripts
            or not self._client.coalesces(stack)
        ):
            return await super().execute(raise_on_error)
        loop = asyncio.get_running_loop()
        calls = [_Call(args, options, loop.create_future()) for args, options in stack]
        try:
            await self._client._join(calls)
            replies = await _replies(calls)
        finally:
            await self.reset()  # type: ignore[no-untyped-call]
        for reply in replies:
            if isinstance(reply, BaseException) and not isinstance(reply, ResponseError):
                raise reply  # the connection failed: as redis-py's own pipeline raises it
        if raise_on_error:
            self.raise_first_error(stack, replies)
        return list(replies)


async def _replies(calls: list[_Call]) -> list[Any]:
    """Each call's reply or error, in order: what ``gather(return_exceptions=True)`` gives,
    without its wrapping future and callbacks (the replies of a pipeline come in one batch,
    so after the first await the rest are mostly done already). Cancelled here, the calls
    not yet sent are dropped from the batch; those sent have their replies read (module
    doc: the connection stays in step)."""
    replies: list[Any] = []
    try:
        for call in calls:
            try:
                replies.append(await call.future)
            except Exception as exc:  # an error reply, or the connection's failure
                replies.append(exc)
    except asyncio.CancelledError:  # this task, or the exchange (it cancels every call)
        for call in calls:
            call.future.cancel()
        raise
    return replies


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


_plain_execute: Any = aioredis.Redis.execute_command
"""``Redis.execute_command`` as last seen unwrapped."""


def _traced() -> bool:
    """Whether the OpenTelemetry redis instrumentation wraps ``Redis.execute_command``
    (wrapt's wrappers expose what they wrap). Asked per command: the method seen unwrapped
    last time is recognised by identity, as a failed ``hasattr`` (an AttributeError raised
    and caught) cost about a tenth of the coalescer's own CPU."""
    global _plain_execute
    method = aioredis.Redis.execute_command
    if method is _plain_execute:
        return False
    if hasattr(method, "__wrapped__"):
        return True
    _plain_execute = method
    return False
