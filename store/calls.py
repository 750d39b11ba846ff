"""Started calls: long-running tools and handoffs, whose result arrives after the run paused.

The run loop opens a call (under its lease) before the tool runs, so a result that arrives
before the tool has even said "started" still finds it. A result is taken once: the first
one moves the call from ``waiting`` to ``reported`` and joins the thread's inbox as a
``CallReported`` event; a second answers "duplicate" and stores nothing. The call's timeout
is a durable timer (store.timers) that moves it to ``timed_out`` instead, in the same
script, so a result and its timeout never both count.

Per-call result URLs are signed: HMAC-SHA256 over the call id and the expiry, with a key
kept in Redis (made once, by whichever process needs it first).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from model.events import CallDue, CallReported, dump_event
from store import keys, scripts
from store.errors import LeaseLost, StoreError
from store.partitions import Shared, of
from store.reads import text
from store.threads import Lease

Reported = Literal["stored", "duplicate", "settled"]
"""``settled``: the call timed out, or was closed (answered at once, cancelled) before."""
_OUTCOMES: dict[int, Reported] = {1: "stored", 0: "duplicate"}

# KEYS: state calls    ARGV: token call_id record_json
# Opening twice (a retried run) keeps the status the call already has.
_OPEN = f"""
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSETNX', KEYS[2], ARGV[2] .. ':{keys.CALL_STATUS}', '{keys.CALL_WAITING}')
return 1
"""

# KEYS: state calls    ARGV: token call_id
_CLOSE = f"""
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[1] then return -1 end
local field = ARGV[2] .. ':{keys.CALL_STATUS}'
if redis.call('HGET', KEYS[2], field) == '{keys.CALL_WAITING}' then
  redis.call('HSET', KEYS[2], field, '{keys.CALL_CLOSED}')
end
return 1
"""

# KEYS: calls inbox    ARGV: call_id new_status event_json
# 1: the event joined the inbox; 0: the same move happened before (a duplicate);
# -2: the call was settled otherwise first; -1: no such call on this thread.
_SETTLE = (
    scripts.CHANGED
    + f"""
local status = redis.call('HGET', KEYS[1], ARGV[1] .. ':{keys.CALL_STATUS}')
if not status then return -1 end
if status == ARGV[2] then return 0 end
if status ~= '{keys.CALL_WAITING}' then return -2 end
redis.call('HSET', KEYS[1], ARGV[1] .. ':{keys.CALL_STATUS}', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
changed()
return 1
"""
)


class CallNotFound(StoreError):
    """No started call has this id (or it belongs to no thread any more)."""

    def __init__(self, call_id: str) -> None:
        super().__init__(f"no started call {call_id}")
        self.call_id = call_id


@dataclass(frozen=True)
class Report:
    thread_id: str
    outcome: Reported


def signature(key: bytes, call_id: str, expires: int) -> str:
    """HMAC-SHA256 (hex) over ``<call_id>.<expires>``."""
    return hmac.new(key, f"{call_id}.{expires}".encode(), hashlib.sha256).hexdigest()


def timer_id(call_id: str) -> str:
    """The call's timeout timer in TIMERS (the shape store.timers parses)."""
    return f"{call_id}:{keys.CALL_TIMER_KIND}:0"


class Calls:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.shared = Shared(client)
        self._open = client.register_script(_OPEN)
        self._close = client.register_script(_CLOSE)
        self._settle = client.register_script(_SETTLE)
        self._key: bytes | None = None

    def _index(self, call_id: str) -> str:
        return keys.call_thread(of(call_id, self.shared.n))

    async def open(self, lease: Lease, call_id: str, tool: str, child: str | None = None) -> None:
        """Record the call as waiting for its result (before the tool runs); ``child``: the
        thread a handoff starts."""
        tid = lease.thread_id
        record = json.dumps({"tool": tool, **({"child": child} if child else {})})

        def index(pipe: aioredis.client.Pipeline) -> None:
            pipe.hset(self._index(call_id), call_id, tid)

        result, *_ = await scripts.run_then(
            self.redis,
            self._open,
            [keys.state(tid), keys.calls(tid)],
            [lease.token, call_id, record],
            index,
        )
        if result == -1:
            raise LeaseLost(tid, lease.token)

    async def close(self, lease: Lease, call_id: str) -> None:
        """No result is taken any more: the tool answered at once, or the thread is cancelled."""
        tid = lease.thread_id
        result = await self._close(
            keys=[keys.state(tid), keys.calls(tid)], args=[lease.token, call_id]
        )
        if result == -1:
            raise LeaseLost(tid, lease.token)

    async def waiting_children(self, thread_id: str) -> list[str]:
        """The child threads of the thread's handoffs still waiting for their answer."""
        return waiting_children_of(await self.redis.hgetall(keys.calls(thread_id)))

    async def thread_of(self, call_id: str) -> str:
        tid = await self.redis.hget(self._index(call_id), call_id)
        if tid is None:
            raise CallNotFound(call_id)
        return text(tid)

    async def report(self, event: CallReported) -> Report:
        """Store a call's result once and wake its thread. Raises CallNotFound."""
        tid = await self.thread_of(event.call_id)
        result = await self._move(tid, event.call_id, keys.CALL_REPORTED, dump_event(event))
        return Report(tid, _OUTCOMES.get(result, "settled"))

    async def time_out(self, thread_id: str, call_id: str) -> bool:
        """The timeout timer came due: the call fails, unless its result came first."""
        event = dump_event(CallDue(call_id=call_id))
        return await self._move(thread_id, call_id, keys.CALL_TIMED_OUT, event) == 1

    async def _move(self, tid: str, call_id: str, status: str, event: bytes) -> int:
        def wake(pipe: aioredis.client.Pipeline) -> None:
            pipe.xadd(self.shared.runs(tid), {"t": tid})  # harmless when nothing moved

        result, *_ = await scripts.run_then(
            self.redis,
            self._settle,
            [keys.calls(tid), keys.inbox(tid)],
            [call_id, status, event],
            wake,
        )
        if result == -1:
            raise CallNotFound(call_id)
        return int(result)

    async def signing_key(self) -> bytes:
        if self._key is None:
            await self.redis.set(keys.CALLBACK_KEY, secrets.token_hex(32), nx=True)
            raw: Any = await self.redis.get(keys.CALLBACK_KEY)
            self._key = text(raw).encode()
        return self._key

    async def signed_query(self, call_id: str, valid_for: float) -> str:
        """``expires=<epoch s>&signature=<hex>`` for a result URL valid this long."""
        expires = int(time.time() + valid_for)
        signed = signature(await self.signing_key(), call_id, expires)
        return f"expires={expires}&signature={signed}"

    async def check_signature(self, call_id: str, expires: int, given: str) -> bool:
        """True: a valid, unexpired signature for this call."""
        if expires < time.time():
            return False
        expected = signature(await self.signing_key(), call_id, expires)
        return hmac.compare_digest(expected, given)


def waiting_children_of(raw: Any) -> list[str]:
    """The waiting child threads in a thread's calls hash (HGETALL of ``keys.calls``)."""
    calls = {text(k): text(v) for k, v in raw.items()}
    return [
        json.loads(record)["child"]
        for cid, record in calls.items()
        if '"child"' in record
        and calls.get(keys.call_field(cid, keys.CALL_STATUS)) == keys.CALL_WAITING
    ]
