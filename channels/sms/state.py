"""What the SMS channel remembers per phone number: approval codes, opt-outs, handled SIDs.

SMS has no thread id a reply could carry: a number's pending approvals are told apart by a
short code, kept here per number and pruned once their request is answered anywhere.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from channels.sms import keys
from model.events import utcnow
from model.records import RequestRecord, RequestView
from store.errors import RequestNotFound
from store.port import ChannelPort


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


@dataclass(frozen=True)
class Pending:
    """An approval waiting for one number's answer, and the code that names it there."""

    code: str
    request: RequestRecord
    outbox_id: str | None
    """The text that offered it here (None for codes written before 0.2)."""


class SmsState:
    def __init__(self, client: aioredis.Redis, port: ChannelPort) -> None:
        self.redis = client
        self.port = port

    # ---- approval codes ------------------------------------------------------------------
    async def code_for(self, number: str, request_id: str, outbox_id: str) -> str:
        """The request's code on this number; the same one on every attempt to send it."""
        key = keys.codes(number)
        existing = await self.redis.hget(key, f"rq:{request_id}")
        if existing is not None:
            return _text(existing)
        while True:
            code = f"{1000 + secrets.randbelow(9000)}"
            if not await self.redis.hsetnx(key, code, request_id):
                continue  # the code names another request here
            # Two sends of one request at once (a route stage and a reminder) agree on one
            # code: the first to claim the request's field wins, the other takes its code.
            if await self.redis.hsetnx(key, f"rq:{request_id}", code):
                await self.redis.hset(key, f"out:{request_id}", outbox_id)
                return code
            await self.redis.hdel(key, code)
            return _text(await self.redis.hget(key, f"rq:{request_id}") or code)

    async def pending(self, number: str) -> list[Pending]:
        """Approvals sent to this number and still unanswered, oldest first."""
        key = keys.codes(number)
        raw: dict[Any, Any] = await self.redis.hgetall(key)
        entries = {_text(k): _text(v) for k, v in raw.items()}
        found: list[Pending] = []
        stale: list[str] = []
        for code, rid in entries.items():
            if code.startswith(("rq:", "out:")) or code == keys.CODES_SETTLED:
                continue
            try:
                view = await self.port.request(rid)
            except RequestNotFound:
                view = None
            if view is None or view.status != "pending":
                stale += [code, f"rq:{rid}", f"out:{rid}"]
            else:
                found.append(Pending(code, view.request, entries.get(f"out:{rid}")))
        if stale:
            await self.redis.hdel(key, *stale)
            await self.redis.hset(key, keys.CODES_SETTLED, entries[stale[-3]])
        return sorted(found, key=lambda p: p.request.created)

    async def forget(self, number: str, pending: Pending) -> None:
        rid = pending.request.request_id
        await self.redis.hdel(keys.codes(number), pending.code, f"rq:{rid}", f"out:{rid}")
        await self.redis.hset(keys.codes(number), keys.CODES_SETTLED, rid)

    async def settled(self, number: str) -> RequestView | None:
        """The request last decided or pruned on this number (what a late answer is about)."""
        rid = await self.redis.hget(keys.codes(number), keys.CODES_SETTLED)
        if rid is None:
            return None
        try:
            return await self.port.request(_text(rid))
        except RequestNotFound:
            return None

    # ---- opt-out -------------------------------------------------------------------------
    async def opt_out(self, number: str) -> None:
        await self.redis.hset(keys.OPTED_OUT, number, utcnow().isoformat())

    async def opt_in(self, number: str) -> bool:
        """True if the number had opted out."""
        return bool(await self.redis.hdel(keys.OPTED_OUT, number))

    async def opted_out(self, number: str) -> bool:
        return bool(await self.redis.hexists(keys.OPTED_OUT, number))

    # ---- handled once --------------------------------------------------------------------
    async def claim_inbound(self, message_sid: str) -> bool:
        """False: this MessageSid was handled (or is being handled) already."""
        return bool(
            await self.redis.set(
                keys.inbound_seen(message_sid), "claimed", nx=True, ex=keys.CLAIM_TTL_SECONDS
            )
        )

    async def done_inbound(self, message_sid: str) -> None:
        await self.redis.set(keys.inbound_seen(message_sid), "done", ex=keys.SEEN_TTL_SECONDS)

    async def release_inbound(self, message_sid: str) -> None:
        """Handling failed: let Twilio's retry try again."""
        await self.redis.delete(keys.inbound_seen(message_sid))
