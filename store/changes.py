"""Which threads changed: the feed behind live views, one subscription per process.

A change to what a watcher sees of a thread is told on ``keys.CHANGES`` as a message of
thread ids separated by spaces. The hot writes (a message, an answer, a commit, a delivery's
end) are told by the process that made them through its ``Announcer``, which gathers the
ids of a short window into one PUBLISH; the rarer scripts publish their thread's id
themselves (store.scripts). Pub/sub is fire and forget: while this process is not
subscribed (Redis restarting, the connection lost) changes pass unseen, so every
(re)subscription is reported as a ``RESYNC``, and the receiver reads everything again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Final, Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from store import keys

log = logging.getLogger(__name__)

Resync = Literal["resync"]
RESYNC: Final[Resync] = "resync"

RETRY_S = 1.0
"""Wait before subscribing again after the connection to Redis failed."""

WINDOW_S = 0.02
"""How long an announcement waits for others to share its PUBLISH. Under load a process
changes hundreds of threads a second, each several times: one message per window instead of
one per write (bench/README.md), for 20 ms more before a live view hears of a change."""

MAX_IDS = 500
"""At most this many ids a message (some 10 KB)."""


class Announcer:
    """Tells the change feed which threads this process changed, the ids of a window at once.

    One per client (``announcer``), so a process's thread store and outbox share a window.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.window = WINDOW_S
        self._ids: set[str] = set()
        self._flush: asyncio.TimerHandle | None = None
        self._later: dict[str, asyncio.TimerHandle] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def now(self, thread_id: str) -> None:
        """Within the window; an announcement ``later`` of the same thread is then moot."""
        self.cancel_later(thread_id)
        self._ids.add(thread_id)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.window, self._send)

    def later(self, thread_id: str, delay: float) -> None:
        """Within ``delay``, unless ``now`` comes first (a run's steps before its release)."""
        if thread_id not in self._later and thread_id not in self._ids:
            loop = asyncio.get_running_loop()
            self._later[thread_id] = loop.call_later(delay, self._due, thread_id)

    def cancel_later(self, thread_id: str) -> None:
        handle = self._later.pop(thread_id, None)
        if handle is not None:
            handle.cancel()

    @property
    def waiting(self) -> int:
        """Threads told of later, not yet announced."""
        return len(self._later)

    def _due(self, thread_id: str) -> None:
        del self._later[thread_id]
        self.now(thread_id)

    def _send(self) -> None:
        ids, self._ids, self._flush = sorted(self._ids), set(), None
        for i in range(0, len(ids), MAX_IDS):
            task = asyncio.ensure_future(self._publish(" ".join(ids[i : i + MAX_IDS])))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _publish(self, message: str) -> None:
        with contextlib.suppress(RedisError, OSError):  # fire and forget, as pub/sub is
            await self.redis.publish(keys.CHANGES, message)


_announcers: weakref.WeakKeyDictionary[aioredis.Redis, Announcer] = weakref.WeakKeyDictionary()


def announcer(client: aioredis.Redis) -> Announcer:
    """The client's announcer (made on first use)."""
    found = _announcers.get(client)
    if found is None:
        found = _announcers[client] = Announcer(client)
    return found


class ChangeFeed:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def batches(self) -> AsyncIterator[set[str] | Resync]:
        """Sets of changed thread ids, each as soon as it is known, or RESYNC.

        Ids that arrive together are yielded together: a burst of commits to one thread
        becomes one read for the receiver, however many writes it took.
        """
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(keys.CHANGES)
                while True:
                    message = await pubsub.get_message(timeout=None)
                    batch: set[str] = set()
                    resync = False
                    while message is not None:
                        if message["type"] == "message":
                            batch.update(_text(message["data"]).split())
                        elif message["type"] == "subscribe":
                            # Also after redis-py reconnected and subscribed again by itself.
                            resync = True
                        message = await pubsub.get_message(timeout=0)
                    if resync:
                        yield RESYNC
                    elif batch:
                        yield batch
            except (RedisError, OSError) as exc:
                log.warning("change feed lost its subscription (%s); retrying", exc)
                await asyncio.sleep(RETRY_S)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
