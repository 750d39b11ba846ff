"""Delivery records of the outbox: claim before sending, settle after, retry on a schedule.

A claim is a short lease on one item. A claim that runs out while its sender was calling the
provider means the outcome is unknown: the item comes back as 'stale', and the channel decides
whether sending again is safe (provider-side idempotency) or must not happen (SMS).

Two ways in. *Direct*: a worker process whose own dispatcher is running (a ``Handoff``)
commits its new items already claimed by that dispatcher (status 'sending', the claim's
deadline, attempt 1, in the item's own HSET: store.threads) and hands them over
in-process; the dispatcher sends, then settles in one round trip. Nothing is read from Redis
on the way, and no stream entry is written, read, acknowledged or deleted. *Through the
stream*: items committed where no dispatcher runs, due retries and recovered claims are
pointers on the outbox stream, claimed by whichever dispatcher reads them (``claim``).

Recovery of a direct item lives in the retry set (``keys.OUTBOX_RETRY``, one per partition,
already scanned by every dispatcher's ``move_due``): the commit adds 'thread|outbox' scored
by the claim's deadline, the settle removes it, a retry reschedules the same member. An item
whose process died before settling is therefore moved onto the stream once its claim has run
out, and the next claim finds it 'stale', as when a stream reader dies mid-send. Chosen over
keeping a stream entry per item because a sorted set costs one ZADD and one ZREM, where an
entry unread by its creator would be read by every other dispatcher, and one read by it
costs the XREADGROUP, XACK and XDEL this path saves. The price: a crash between the commit
and the send also looks like a crash mid-send, so a channel that may not resend reports the
item 'unknown' (and the thread reroutes it) rather than sending it; the window is the time
from the commit to the sender's call, as the dispatcher starts the send at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import redis.asyncio as aioredis

from model.events import DeliveryFailed, dump_event
from model.records import Delivery, OutboxItem, ProviderRef
from store import keys, scripts
from store.changes import announcer
from store.partitions import Shared


@dataclass(frozen=True)
class Claim:
    item: OutboxItem
    attempt: int
    stale: bool
    """A previous attempt was interrupted mid-send: its outcome is unknown."""
    direct: bool = False
    """Claimed by the commit that made the item: its recovery entry is to be removed when it
    settles (see the module doc)."""


Busy = Literal["busy"]
"""``claim``'s answer for an item another sender holds a live claim on."""


class Handoff(Protocol):
    """A dispatcher in the committing process, taking the items its commits claim for it."""

    @property
    def claim_ms(self) -> int:
        """How long a commit's claim on a new item lasts."""
        ...

    def accepting(self) -> bool:
        """Whether it is running and will send what it is handed (else: the stream)."""
        ...

    def take(self, items: Sequence[OutboxItem]) -> None:
        """The items a commit just stored, claimed for this dispatcher: send each."""
        ...


def recovery_member(thread_id: str, outbox_id: str) -> str:
    """An item's member of the retry set: 'thread|outbox id' (RETRY_DUE splits it)."""
    return f"{thread_id}|{outbox_id}"


class OutboxStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.shared = Shared(client)
        self._claim = client.register_script(scripts.OUTBOX_CLAIM)
        self._settle = client.register_script(scripts.OUTBOX_SETTLE)
        self._due = client.register_script(scripts.RETRY_DUE)
        self._report = client.register_script(scripts.OUTBOX_REPORT_FAILURE)
        self._status = client.register_script(scripts.OUTBOX_PROVIDER_STATUS)
        self.announcer = announcer(client)
        self.next_retry = float("inf")
        """When the earliest retry this process scheduled is due (epoch s): the dispatcher's
        cue to move due retries before its next scheduled look."""

    async def setup(self) -> None:
        """Load the scripts, so the first settle is not a NOSCRIPT round trip."""
        for script in (self._claim, self._settle, self._due, self._report):
            await self.redis.script_load(script.script)

    async def claim(self, thread_id: str, outbox_id: str, claim_ms: int) -> Claim | Busy | None:
        """Claim an item for sending; None if it is done or missing, 'busy' if another
        sender's claim on it has not run out."""
        reply = await self._claim(
            keys=[keys.outbox(thread_id), keys.requests(thread_id)], args=[outbox_id, claim_ms]
        )
        verdict = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if verdict == "busy":
            return "busy"
        if verdict not in ("go", "stale"):
            return None
        return Claim(
            item=OutboxItem.load(
                reply[1],
                outbox_id=outbox_id,
                thread_id=thread_id,
                requests={_text(reply[3]): reply[4]} if len(reply) > 4 and reply[4] else None,
            ),
            attempt=int(reply[2]),
            stale=verdict == "stale",
        )

    async def _settle_then(
        self,
        item: OutboxItem,
        args: list[str | bytes],
        also: list[scripts.Then | None],
        claim: Claim | None = None,
    ) -> None:
        def then(pipe: aioredis.client.Pipeline) -> None:
            for add in also:
                if add is not None:
                    add(pipe)
            if claim is not None and claim.direct:  # settled: its recovery entry can go
                retry = self.shared.outbox_retry(item.thread_id)
                pipe.zrem(retry, recovery_member(item.thread_id, item.outbox_id))

        await scripts.run_then(
            self.redis,
            self._settle,
            [keys.outbox(item.thread_id), keys.inbox(item.thread_id)],
            [item.outbox_id, *args, _attempt(claim)],
            then,
        )
        self.announcer.now(item.thread_id)

    async def sent(
        self,
        item: OutboxItem,
        delivery: Delivery,
        ack: scripts.Then | None = None,
        *,
        claim: Claim | None = None,
    ) -> None:
        """Record what went out, and map the provider's ids back to the thread and request.

        ``ack`` adds the caller's stream acknowledgement to the same round trip. ``claim``,
        the one the attempt was made under, settles what it leaves: a commit's claim
        (Claim.direct) its recovery entry; a first attempt its count, which readers assume.
        """
        target = ref_value(
            ProviderRef(
                thread_id=item.thread_id, request_id=item.request_id, outbox_id=item.outbox_id
            )
        )

        def refs(pipe: aioredis.client.Pipeline) -> None:
            for provider_id in {delivery.provider_id, *delivery.refs} if delivery.mapped else ():
                pipe.set(keys.ref(item.to.channel, provider_id), target, ex=keys.REF_TTL_SECONDS)
            # Where the request was last posted: replies after it answer, and a withdrawal
            # changes that message. Not where no reply can name it (REST): 100 bytes unread.
            if item.request_id and delivery.mapped:
                field = keys.request_field(item.request_id, keys.REQUEST_SENT)
                pipe.hset(keys.requests(item.thread_id), field, delivery.provider_id)

        await self._settle_then(item, ["sent", delivery.provider_id, "", ""], [refs, ack], claim)

    async def retry(
        self, item: OutboxItem, error: str, delay_s: float, ack: scripts.Then | None = None
    ) -> None:
        """Put the item back to pending, due again after ``delay_s``."""
        # This host's clock, not the server's: a retry a little early or late is harmless.
        due_ms = int((time.time() + delay_s) * 1000)
        self.next_retry = min(self.next_retry, due_ms / 1000)

        def schedule(pipe: aioredis.client.Pipeline) -> None:
            # The member a commit's claim added, if any: rescheduled, not removed.
            retry = self.shared.outbox_retry(item.thread_id)
            pipe.zadd(retry, {recovery_member(item.thread_id, item.outbox_id): due_ms})

        await self._settle_then(item, ["pending", "", error[:300], ""], [schedule, ack])

    async def give_up(
        self,
        item: OutboxItem,
        status: str,
        error: str,
        ack: scripts.Then | None = None,
        *,
        claim: Claim | None = None,
    ) -> None:
        """A permanent failure (or an unknown outcome): recorded on the item, and reported to
        the thread as a ``DeliveryFailed`` event for its run loop to reroute."""
        failure = _failure(item, error, "unknown" if status == "unknown" else "failed")

        def wake(pipe: aioredis.client.Pipeline) -> None:
            pipe.xadd(self.shared.runs(item.thread_id), {"t": item.thread_id})

        await self._settle_then(
            item, [status, "", error[:300], dump_event(failure)], [wake, ack], claim
        )

    async def report_failure(self, thread_id: str, outbox_id: str, reason: str) -> bool:
        """A failure the provider reported later (a bounce, a status callback, an opt-out):
        the item becomes failed and the thread hears of it, once. False: unknown item, or
        its failure is recorded already."""
        raw = await self._body(thread_id, outbox_id)
        if raw is None:
            return False
        item = await self._item(thread_id, outbox_id, raw)
        failure = _failure(item, reason, "failed")

        def wake(pipe: aioredis.client.Pipeline) -> None:
            pipe.xadd(self.shared.runs(thread_id), {"t": thread_id})

        reported, *_ = await scripts.run_then(
            self.redis,
            self._report,
            [keys.outbox(thread_id), keys.inbox(thread_id)],
            [outbox_id, reason[:300], dump_event(failure)],
            wake,
        )
        return bool(reported)

    async def _body(self, thread_id: str, outbox_id: str) -> bytes | None:
        """An item's JSON: in the requests hash, or where an earlier version kept it."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(keys.requests(thread_id), keys.outbox_body(outbox_id))
        pipe.hget(keys.outbox(thread_id), outbox_id)
        body, before = await pipe.execute()
        found: bytes | None = body if body is not None else before
        return found

    async def _item(self, thread_id: str, outbox_id: str, raw: bytes | str) -> OutboxItem:
        """An item read alone, with its request read too when it was stored without it."""
        try:
            return OutboxItem.load(raw, outbox_id=outbox_id, thread_id=thread_id)
        except KeyError as missing:  # an approval's first offer, stored as its request says
            rid = str(missing.args[0])
            found = await self.redis.hget(keys.requests(thread_id), rid)
            requests = {rid: found} if found is not None else None
            return OutboxItem.load(raw, outbox_id=outbox_id, thread_id=thread_id, requests=requests)

    async def record_status(self, thread_id: str, outbox_id: str, status: str) -> bool:
        """Note a status the provider reported for an item; False: unknown item, or noted."""
        added = await self._status(keys=[keys.outbox(thread_id)], args=[outbox_id, status])
        return bool(added)

    async def move_due(self, limit: int = 100) -> int:
        """Put retries whose time has come back on the outbox streams (each partition's
        retries onto its own stream: one tag, one slot, one script)."""
        # A look first, the script only where something is due: an idle dispatcher makes
        # one read per partition per look, not a script with its clock and range read.
        now_ms = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        for p in range(self.shared.n):
            pipe.zrangebyscore(keys.outbox_retry(p), "-inf", now_ms, 0, 1)
        due = [p for p, found in enumerate(await pipe.execute()) if found]
        if not due:
            return 0
        calls = [([keys.outbox_retry(p), keys.outbox_stream(p)], [limit]) for p in due]
        return sum(int(moved) for moved in await scripts.run_each(self.redis, self._due, calls))

    async def lookup_ref(self, channel: str, provider_id: str) -> ProviderRef | None:
        """What a message we sent (or a human's message we stored) is, by its provider id."""
        raw = await self.redis.get(keys.ref(channel, provider_id))
        if raw is None:
            return None
        tid, rid, oid = (raw.decode() if isinstance(raw, bytes) else raw).split("|")
        return ProviderRef(thread_id=tid, request_id=rid or None, outbox_id=oid or None)


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def ref_value(ref: ProviderRef) -> str:
    """The stored form of a reference: ``thread|request|outbox``, empty where absent."""
    return f"{ref.thread_id}|{ref.request_id or ''}|{ref.outbox_id or ''}"


def _failure(
    item: OutboxItem, reason: str, outcome: Literal["failed", "unknown"]
) -> DeliveryFailed:
    return DeliveryFailed(
        outbox_id=item.outbox_id,
        message=item.kind,
        channel=item.to.channel,
        address=item.to.address,
        reason=reason[:200],
        outcome=outcome,
        request_id=item.request_id,
    )


def _attempt(claim: Claim | None) -> str:
    """OUTBOX_SETTLE's attempt argument: what the claim wrote that the settle may delete."""
    if claim is not None and claim.direct:
        return "2"  # a commit's own claim: no count, its deadline in the status (store.threads)
    return "1" if claim is not None and claim.attempt == 1 else "0"
