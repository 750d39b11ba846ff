"""Where each schedule stands: the latest tick dealt with, one small key per schedule."""

from __future__ import annotations

import redis.asyncio as aioredis

from store import keys

# Forward only: two workers finishing the same tick, or a slow one finishing an older tick
# after a newer one, can never move a schedule back (its ticks would start again).
ADVANCE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


class ScheduleCursors:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._advance = redis.register_script(ADVANCE)

    async def get(self, name: str) -> int | None:
        """The latest tick (epoch ms) of ``name`` dealt with; None: never started."""
        raw = await self.redis.get(keys.schedule_cursor(name))
        return int(raw) if raw is not None else None

    async def start(self, name: str, tick_ms: int) -> bool:
        """Set the cursor of a schedule seen for the first time (ticks before are not
        missed: they were before the schedule existed). False: another worker did first."""
        return bool(await self.redis.set(keys.schedule_cursor(name), tick_ms, nx=True))

    async def advance(self, name: str, tick_ms: int) -> bool:
        """Move the cursor to ``tick_ms`` if that is later. False: it was there already."""
        return bool(await self._advance(keys=[keys.schedule_cursor(name)], args=[tick_ms]))
