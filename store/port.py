"""The channels' port into the core: all a channel may do with threads, and nothing more.

Channels translate, verify and send; they never write a thread's log, take a lease, or name
a core key. What comes in from a human is appended to a thread's inbox (deduplicated by the
provider's message id) or binds an answer to a request; what a provider tells us later about
a message we sent is reported as a delivery outcome. The run loop, holding the lease, does
the rest. Channel-private state (email tokens, SMS codes, opt-outs) lives under each
channel's own keys module, on the Redis client the service hands it.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from model.events import CallReported, CancelRequested, HumanResponse, UserMessage
from model.records import (
    ProviderRef,
    RequestRecord,
    RequestView,
    ThreadMeta,
    ThreadSummary,
    ThreadView,
)
from store import keys
from store.calls import Calls, Report, waiting_children_of
from store.changes import ChangeFeed
from store.digest import Digests
from store.errors import ThreadNotFound
from store.outbox import OutboxStore, ref_value
from store.reads import flat_text, meta_of, text
from store.scripts import Then
from store.threads import NewThread, ThreadStore

__all__ = ["ChannelPort", "NewThread"]


MAX_HANDOFF_DEPTH = 20
"""How far down a chain of handoffs a reply looks for the question it answers (the
configuration's largest ``max_depth``)."""


class ChannelPort:
    def __init__(self, threads: ThreadStore, outbox: OutboxStore) -> None:
        self._threads = threads
        self._outbox = outbox
        self._redis: aioredis.Redis = threads.redis
        self._calls = Calls(self._redis)
        self.changes = ChangeFeed(self._redis)
        """Which threads changed, as they change (the console's live stream)."""
        self.digests = Digests(self._redis)
        """Small summaries of threads and their pending requests, for live views."""

    # ---- input from humans ------------------------------------------------------------
    async def append_message(
        self,
        thread_id: str,
        event: UserMessage,
        *,
        dedupe: str | None = None,
        create: NewThread | None = None,
        remember: str | None = None,
        before: Then | None = None,
        unasked: bool = False,
    ) -> bool:
        """Store a human's message once and wake the thread. False: a duplicate.

        Raises ThreadNotFound when the thread does not exist and ``create`` is not given.
        ``remember``: the provider's id of the message, remembered as ``remember`` does,
        and ``before``: the channel's own records of it (commands on its own keys); both
        written ahead of the message, in the same round trip, so a run it wakes sees them.
        ``unasked``: store it only if the thread has never asked a question (nor started a
        call): else QuestionAsked, nothing stored but ``remember`` and ``before``, and the
        channel looks for the question (``open_question``) the message may answer.
        """
        if remember is not None:
            ref = _ref_command(event.channel, remember, thread_id)
            before = ref if before is None else _both(ref, before)
        return await self._threads.append_inbound(
            thread_id, event, dedupe=dedupe, create=create, before=before, unasked=unasked
        )

    async def answer(
        self,
        request_id: str,
        response: HumanResponse,
        *,
        check: bool = True,
        dedupe: str | None = None,
    ) -> RequestRecord:
        """Bind one answer to a pending request, once, from an allowed responder.

        ``check=False`` when the channel checked the responder itself (a Slack user group);
        ``dedupe``, the provider's id of the message that answers, shared with messages.
        """
        return await self._threads.answer(request_id, response, check=check, dedupe=dedupe)

    async def report_call(self, event: CallReported) -> Report:
        """A started call's result (a webhook), stored once. Raises CallNotFound."""
        return await self._calls.report(event)

    async def call_signed(self, call_id: str, expires: int, signature: str) -> bool:
        """True: the signature of a per-call result URL is valid and unexpired."""
        return await self._calls.check_signature(call_id, expires, signature)

    async def cancel(self, thread_id: str, event: CancelRequested, dedupe: str) -> bool:
        """Ask the thread's run loop to cancel it (and its children). False: a duplicate."""
        return await self._threads.append_inbound(thread_id, event, dedupe=dedupe)

    # ---- what we sent, and what became of it --------------------------------------------
    async def resolve(self, channel: str, provider_id: str) -> ProviderRef | None:
        """The thread (and request, and outbox item) a provider's message id belongs to."""
        return await self._outbox.lookup_ref(channel, provider_id)

    async def remember(self, channel: str, provider_id: str, thread_id: str) -> None:
        """A message a human sent on a thread: replies that cite its id find the thread."""
        await self._redis.set(*_ref_args(channel, provider_id, thread_id), **_REF_OPTIONS)

    async def forget(self, channel: str, provider_id: str) -> None:
        """A message remembered by an ``unasked`` append that then answered a question
        instead: no reply finds a thread by it (as if it had never been remembered)."""
        await self._redis.delete(keys.ref(channel, provider_id))

    async def report_failure(self, thread_id: str, outbox_id: str, reason: str) -> bool:
        """The provider says a message we sent did not arrive (a bounce, a failed text, an
        opt-out); the thread's run loop decides where to ask next. False: already known."""
        return await self._outbox.report_failure(thread_id, outbox_id, reason)

    async def record_status(self, thread_id: str, outbox_id: str, status: str) -> bool:
        """A delivery status the provider reported (queued, sent, delivered, read...), kept on
        the item beside its own status. False: unknown item, or that status is noted."""
        return await self._outbox.record_status(thread_id, outbox_id, status)

    # ---- reads ----------------------------------------------------------------------------
    async def meta(self, thread_id: str) -> ThreadMeta:
        """What a thread is (agent, origin); one small read, never the events."""
        raw = await self._redis.hgetall(keys.meta(thread_id))
        if not raw:
            raise ThreadNotFound(thread_id)
        return meta_of(flat_text(raw), thread_id)

    async def open_question(self, thread_id: str, depth: int = 0) -> RequestView | None:
        """The thread's latest question, answered or not, and where it was posted.

        A thread waiting for another agent (a handoff) has its child's question as its own:
        the child asked it in the same conversation, so a reply there answers it.
        """
        # Both reads at once: the question's id, and the handoffs to look in if it is not
        # pending (a new message finds none, and a thread's calls are few).
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(keys.state(thread_id), keys.QUESTION)
        pipe.hgetall(keys.calls(thread_id))
        rid, calls = await pipe.execute()
        views = await self._threads.request_views([(text(rid), thread_id)]) if rid else []
        own = views[0] if views else None
        if (own is None or own.status != "pending") and depth < MAX_HANDOFF_DEPTH:
            for child in waiting_children_of(calls):
                asked = await self.open_question(child, depth + 1)
                if asked is not None and asked.status == "pending":
                    return asked
        return own

    async def request(self, request_id: str) -> RequestView:
        return await self._threads.request(request_id)

    async def pending_requests(self, limit: int = 200) -> list[RequestView]:
        return await self._threads.pending_requests(limit)

    async def thread(self, thread_id: str) -> ThreadView:
        """The whole thread, for those who show it (REST, the console); not for routing."""
        return await self._threads.thread(thread_id)

    async def summaries(self, limit: int = 100) -> list[ThreadSummary]:
        return await self._threads.summaries(limit)


_REF_OPTIONS: dict[str, Any] = {"ex": keys.REF_TTL_SECONDS, "nx": True}
"""A human's message is remembered once (a later copy does not move its expiry)."""


def _ref_args(channel: str, provider_id: str, thread_id: str) -> tuple[str, str]:
    return keys.ref(channel, provider_id), ref_value(ProviderRef(thread_id=thread_id))


def _ref_command(channel: str, provider_id: str, thread_id: str) -> Then:
    def add(pipe: aioredis.client.Pipeline) -> None:
        pipe.set(*_ref_args(channel, provider_id, thread_id), **_REF_OPTIONS)

    return add


def _both(first: Then, second: Then) -> Then:
    def add(pipe: aioredis.client.Pipeline) -> None:
        first(pipe)
        second(pipe)

    return add
