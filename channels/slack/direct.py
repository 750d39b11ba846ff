"""Direct messages as people write them: one running conversation per DM, answered in place.

People do not reply in threads in a DM. A top-level DM continues the DM's open conversation
(its agent thread), and the agent answers in the DM itself, not in a Slack thread under the
first message. The conversation ends with the agent's final answer, or after a quiet spell
(``DM_IDLE_SECONDS``); the next DM then starts a new one.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from channels.slack import keys

_OPEN = """
local current = redis.call('GET', KEYS[1])
if current then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return current
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""
"""The open conversation, kept open by this message; else ARGV[1] made it (nil returned).
One round trip for every DM, where SET NX, GET and EXPIRE were three for all but the first."""
_END = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class Direct:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._open = redis.register_script(_OPEN)
        self._end = redis.register_script(_END)

    async def open(self, team: str, channel: str, new_thread: str) -> tuple[str, bool]:
        """The DM's open conversation, or ``new_thread`` made it: (thread id, is it new)."""
        key = keys.direct(team, channel)
        current = _text(await self._open(keys=[key], args=[new_thread, keys.DM_IDLE_SECONDS]))
        if current is None:
            return new_thread, True
        return current, False

    async def end(self, team: str, channel: str, thread_id: str) -> None:
        """The agent gave its final answer: the DM's next message starts a new conversation.
        Only this thread's mark goes (a newer conversation's stays): compare and delete."""
        await self._end(keys=[keys.direct(team, channel)], args=[thread_id])
