"""A signing key made once and kept in Redis, for when the operator configures none.

API and worker processes must sign and check with the same key: the first process that
needs it makes it (SET NX), every process then reads the one that won.
"""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis


async def shared_key(client: aioredis.Redis, key: str, what: str) -> bytes:
    """The key stored at ``key``, made now if there is none yet."""
    await client.set(key, secrets.token_hex(32), nx=True)
    raw = await client.get(key)
    if raw is None:  # pragma: no cover - deleted between the two commands
        raise RuntimeError(f"{what} signing key vanished from Redis")
    return raw if isinstance(raw, bytes) else raw.encode()
