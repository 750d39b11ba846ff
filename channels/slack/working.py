"""A sign of life while the model works, on the message the agent is handling: in an
assistant thread (Slack's AI-app surface) the thread's status ("is working on it..."), set
with ``assistant.threads.setStatus``; anywhere else a reaction.

The worker never calls Slack; the channel does both ends. When a human's message is stored,
the sign goes on; when the Slack sender next delivers a message of that thread (an answer, a
question, an approval), the signs still shown are taken off (the status set to ""). A sign
is a courtesy: a failed call is logged and nothing else changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError

from channels.slack import keys
from channels.slack.webapi import KeptAliveClient
from store.scripts import Then

log = logging.getLogger("switchboard.slack")

WORKING = "eyes"
"""The emoji name (:eyes:): "seen, on it"."""
STATUS = "is working on it..."
"""The assistant thread's status; Slack shows it after the app's name."""
_ERRORS = (TimeoutError, SlackApiError, aiohttp.ClientError, OSError)
_EXPECT = """
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('EXPIRE', KEYS[1], ARGV[2])
"""
"""Note a message and renew the set's expiry: one round trip on the ack's path (a MULTI
pipeline is four commands), as atomic."""


class Working:
    def __init__(self, client: KeptAliveClient, redis: aioredis.Redis) -> None:
        self.client = client
        self.redis = redis
        self._expect = redis.register_script(_EXPECT)

    async def expect(
        self, thread_id: str, channel: str, ts: str, assistant_thread: str | None = None
    ) -> None:
        """Before the message is stored: note it, so an answer that beats the sign still
        finds it to clear (``show`` then sees it gone and takes the sign off).
        ``assistant_thread``: the root ts of the assistant thread it was written in."""
        member = _member(channel, ts, assistant_thread)
        await self._expect(keys=[keys.working(thread_id)], args=[member, keys.WORKING_TTL_SECONDS])

    @staticmethod
    def expecting(
        thread_id: str, channel: str, ts: str, assistant_thread: str | None = None
    ) -> Then:
        """``expect`` as commands for the pipeline that stores the message, ahead of it
        (ChannelPort.append_message's ``before``): the same note, no round trip of its own."""
        member = _member(channel, ts, assistant_thread)

        def add(pipe: aioredis.client.Pipeline) -> None:
            pipe.sadd(keys.working(thread_id), member)
            pipe.expire(keys.working(thread_id), keys.WORKING_TTL_SECONDS)

        return add

    async def _members(self, thread_id: str, channel: str, ts: str) -> list[str]:
        mine = _member(channel, ts)
        raw = await self.redis.smembers(keys.working(thread_id))
        shown = [m.decode() if isinstance(m, bytes) else str(m) for m in raw]
        return [m for m in shown if m == mine or m.startswith(mine + "|")]

    async def pending(self, thread_id: str, channel: str, ts: str) -> bool:
        """Is the agent still to answer this message (nothing posted in the thread since)?"""
        return bool(await self._members(thread_id, channel, ts))

    async def drop(self, thread_id: str, channel: str, ts: str) -> None:
        """The message was not stored after all (no such thread)."""
        for member in await self._members(thread_id, channel, ts):
            await self.redis.srem(keys.working(thread_id), member)

    async def show(
        self, thread_id: str, channel: str, ts: str, assistant_thread: str | None = None
    ) -> None:
        """Put the sign on a stored message (noted by ``expect``)."""
        if assistant_thread is not None:
            if not await self._status(channel, assistant_thread, STATUS):
                return
        elif not await self._react(channel, ts):
            return
        member = _member(channel, ts, assistant_thread)
        try:
            noted = await self.redis.sismember(keys.working(thread_id), member)
        except RedisError as exc:  # a task nobody awaits: say it here, and leave the sign
            log.info("could not check the working sign of %s: %s", thread_id, exc)
            return
        if not noted:
            await self._undo(member)  # the agent answered while the sign went on

    async def clear(self, thread_id: str) -> None:
        """The agent spoke: take the signs off the messages it was working on."""
        key = keys.working(thread_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.smembers(key)
            pipe.delete(key)
            shown, _ = await pipe.execute()
        for raw in shown:
            await self._undo(raw.decode() if isinstance(raw, bytes) else raw)

    async def _undo(self, member: str) -> None:
        channel, ts, *assistant = member.split("|")
        if assistant:
            await self._status(channel, assistant[0], "")  # "" clears it
        else:
            await self._remove(channel, ts)

    # One call per message and per answer: by the client's lean way (webapi.py), with the
    # arguments slack_sdk's reactions_add / reactions_remove / assistant_threads_setStatus
    # would send.
    async def _status(self, channel: str, thread_ts: str, status: str) -> bool:
        params = {"channel_id": channel, "thread_ts": thread_ts, "status": status}
        call = self.client.lean_call("assistant.threads.setStatus", params, as_json=True)
        return await _tried("set the assistant status", call)

    async def _react(self, channel: str, ts: str) -> bool:
        params = {"channel": channel, "timestamp": ts, "name": WORKING}
        call = self.client.lean_call("reactions.add", params)
        return await _tried("add the working reaction", call, fine="already_reacted")

    async def _remove(self, channel: str, ts: str) -> None:
        params = {"channel": channel, "timestamp": ts, "name": WORKING}
        call = self.client.lean_call("reactions.remove", params)
        await _tried("remove the working reaction", call, fine="no_reaction")


async def _tried(what: str, call: Awaitable[Any], fine: str | None = None) -> bool:
    """Run a call to Slack for the sign of life: a failure is logged, never raised (the
    sign is a courtesy). ``fine``: the Slack error meaning it is already as wanted."""
    try:
        await call
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error != fine:
            log.info("could not %s: %s", what, error)
            return False
    except _ERRORS as exc:
        log.info("could not %s: %s", what, exc)
        return False
    return True


def _member(channel: str, ts: str, assistant_thread: str | None = None) -> str:
    member = f"{channel}|{ts}"
    return f"{member}|{assistant_thread}" if assistant_thread else member
