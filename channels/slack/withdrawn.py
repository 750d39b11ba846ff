"""Withdrawal reaches Slack: the approval messages of a withdrawn request lose their buttons.

The Slack sender notes where it posted each approval (the messages' channel and ts, under
the channel's own key); when the run loop withdraws the request it sends a ``withdrawn``
outbox item, and the sender updates every one of those messages (``chat.update``, which is
idempotent: an attempt repeated after a lost answer changes nothing more).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from channels.slack import keys
from channels.slack.blocks import Block, approval_head
from channels.slack.markup import escape


def blocks(tool: str, arguments: Mapping[str, Any], why: str) -> list[Block]:
    """The approval after its withdrawal: the call, a line saying why, no buttons."""
    note = {"type": "mrkdwn", "text": f":heavy_minus_sign: *{escape(why)}* (nothing was decided)"}
    return [*approval_head(tool, arguments), {"type": "section", "text": note}]


class Posts:
    """Where each approval was posted, by request."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def remember(self, thread_id: str, request_id: str, channel: str, ts: str) -> None:
        key = keys.approval_posts(thread_id, request_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, f"{channel}|{ts}")
            pipe.expire(key, keys.POSTS_TTL_SECONDS)
            await pipe.execute()

    async def of(self, thread_id: str, request_id: str) -> list[tuple[str, str]]:
        """(channel, ts) of each message that offered the request, oldest first."""
        raw = await self.redis.smembers(keys.approval_posts(thread_id, request_id))
        found = [(r.decode() if isinstance(r, bytes) else r).partition("|") for r in raw]
        return sorted(((c, ts) for c, _, ts in found), key=lambda p: float(p[1] or 0))
