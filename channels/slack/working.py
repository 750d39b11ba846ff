"""A sign of life while the model works: a reaction on the message the agent is handling.

The worker never calls Slack; the channel does both ends. When a human's message is stored,
the ``WORKING`` reaction goes on it; when the Slack sender next delivers a message of that
thread (an answer, a question, an approval), the reactions still shown are taken off. A
reaction is a courtesy: a failed call is logged and nothing else changes.
"""

from __future__ import annotations

import logging

import aiohttp
import redis.asyncio as aioredis
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from channels.slack import keys

log = logging.getLogger("switchboard.slack")

WORKING = "eyes"
"""The emoji name (:eyes:): "seen, on it"."""
_ERRORS = (TimeoutError, SlackApiError, aiohttp.ClientError, OSError)


class Working:
    def __init__(self, client: AsyncWebClient, redis: aioredis.Redis) -> None:
        self.client = client
        self.redis = redis

    async def expect(self, thread_id: str, channel: str, ts: str) -> None:
        """Before the message is stored: note it, so an answer that beats the reaction
        still finds it to clear (``show`` then sees it gone and takes the reaction off)."""
        key = keys.working(thread_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, _member(channel, ts))
            pipe.expire(key, keys.WORKING_TTL_SECONDS)
            await pipe.execute()

    async def pending(self, thread_id: str, channel: str, ts: str) -> bool:
        """Is the agent still to answer this message (nothing posted in the thread since)?"""
        return bool(await self.redis.sismember(keys.working(thread_id), _member(channel, ts)))

    async def drop(self, thread_id: str, channel: str, ts: str) -> None:
        """The message was not stored after all (no such thread)."""
        await self.redis.srem(keys.working(thread_id), _member(channel, ts))

    async def show(self, thread_id: str, channel: str, ts: str) -> None:
        """Put the reaction on a stored message (noted by ``expect``)."""
        try:
            await self.client.reactions_add(channel=channel, timestamp=ts, name=WORKING)
        except SlackApiError as exc:
            if exc.response.get("error") != "already_reacted":
                log.info("could not add the working reaction: %s", exc.response.get("error"))
                return
        except _ERRORS as exc:
            log.info("could not add the working reaction: %s", exc)
            return
        if not await self.redis.sismember(keys.working(thread_id), _member(channel, ts)):
            await self._remove(channel, ts)  # the agent answered while the reaction went on

    async def clear(self, thread_id: str) -> None:
        """The agent spoke: take the reactions off the messages it was working on."""
        key = keys.working(thread_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.smembers(key)
            pipe.delete(key)
            shown, _ = await pipe.execute()
        for raw in shown:
            channel, _, ts = (raw.decode() if isinstance(raw, bytes) else raw).partition("|")
            await self._remove(channel, ts)

    async def _remove(self, channel: str, ts: str) -> None:
        try:
            await self.client.reactions_remove(channel=channel, timestamp=ts, name=WORKING)
        except SlackApiError as exc:
            if exc.response.get("error") != "no_reaction":
                log.info("could not remove the working reaction: %s", exc.response.get("error"))
        except _ERRORS as exc:
            log.info("could not remove the working reaction: %s", exc)


def _member(channel: str, ts: str) -> str:
    return f"{channel}|{ts}"
