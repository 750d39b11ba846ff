"""Which threads changed: the feed behind live views, one subscription per process.

Every script that changes what a watcher sees of a thread publishes the thread id on
``keys.CHANGES`` (store.scripts). Pub/sub is fire and forget: while this process is not
subscribed (Redis restarting, the connection lost) changes pass unseen, so every
(re)subscription is reported as a ``RESYNC``, and the receiver reads everything again.
"""

from __future__ import annotations

import asyncio
import logging
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
                            batch.add(_text(message["data"]))
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
