"""Where a thread stands in the human's mailbox, recorded as mail goes in and out.

A mail we send answers the human's last mail and cites the whole conversation; keeping the
Message-IDs as they pass (a channel-private list per thread) means composing one never
reads the thread's events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from channels.email import keys
from model.records import ThreadMeta
from store.scripts import Then

MAX_REFERENCES = 20


@dataclass(frozen=True)
class ThreadMail:
    subject: str
    parent: str | None
    chain: list[str]


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def received_writes(thread_id: str, message_id: str) -> Then:
    """The writes that record a human's mail on the thread, for a pipeline the caller
    sends (the append's own, ahead of the message: ChannelPort.append_message)."""

    def add(pipe: aioredis.client.Pipeline) -> None:
        if "@" not in message_id:
            return  # known by a digest only: no client could cite it
        pipe.rpush(keys.chain(thread_id), message_id)
        pipe.set(keys.parent(thread_id), message_id, ex=keys.CHAIN_TTL_SECONDS)
        pipe.expire(keys.chain(thread_id), keys.CHAIN_TTL_SECONDS)

    return add


class MailChain:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def received(self, thread_id: str, message_id: str) -> None:
        """A human's mail joined the thread: our next mail answers it."""
        pipe = self.redis.pipeline(transaction=True)
        received_writes(thread_id, message_id)(pipe)
        if len(pipe):
            await pipe.execute()

    async def sent(self, thread_id: str, message_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(keys.chain(thread_id), message_id)
        pipe.expire(keys.chain(thread_id), keys.CHAIN_TTL_SECONDS)
        await pipe.execute()

    async def of(self, meta: ThreadMeta, channel: str) -> ThreadMail:
        """The subject, the mail to answer and the References of a thread's next mail."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.lrange(keys.chain(meta.thread_id), 0, -1)
        pipe.get(keys.parent(meta.thread_id))
        raw: list[Any]
        raw, parent = await pipe.execute()
        route = meta.origin.route if meta.origin.channel == channel else {}
        chain: list[str] = []
        for mid in [*route.get("references", "").split(), *(_text(r) for r in raw)]:
            if mid not in chain:
                chain.append(mid)
        if len(chain) > MAX_REFERENCES:  # keep the first (the thread's root) and the latest
            chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
        answered = _text(parent) if parent is not None else (chain[-1] if chain else None)
        return ThreadMail(subject=route.get("subject", ""), parent=answered, chain=chain)
