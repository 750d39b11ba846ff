"""Every Redis key name and TTL, in one place.

A thread's keys carry its id as a hash tag, ``sb:{<thread>}:...``, so one Lua script over
them stays on one slot of a Redis Cluster. Keys shared by all threads (the work streams and
indexes) carry their own tags; nothing ever writes a thread key and a shared key in one script.
"""

from __future__ import annotations

PREFIX = "sb"


# ---- one thread -------------------------------------------------------------------------
def events(thread_id: str) -> str:
    """LIST of JSON events: the append-only business log. Written only under the lease."""
    return f"{PREFIX}:{{{thread_id}}}:events"


def inbox(thread_id: str) -> str:
    """LIST of JSON events that arrived from humans, waiting to be merged by the lease holder."""
    return f"{PREFIX}:{{{thread_id}}}:inbox"


def seen(thread_id: str) -> str:
    """SET of provider message ids already stored: the idempotency record for inbound appends."""
    return f"{PREFIX}:{{{thread_id}}}:seen"


def state(thread_id: str) -> str:
    """HASH of execution state: status, steps, errors, lease owner / token / deadline."""
    return f"{PREFIX}:{{{thread_id}}}:state"


def meta(thread_id: str) -> str:
    """HASH of what the thread is: agent, origin channel and its routing, creation time."""
    return f"{PREFIX}:{{{thread_id}}}:meta"


LAYOUT = "layout"
"""Field of ``meta``: '1' on a thread made by a version that keeps its ledger in the state
hash (``LEDGER`` fields) and marks its snapshot (``HAS_SNAPSHOT``), so the acquire reads
neither key for a thread that has neither. Absent on an earlier thread: its ``ledger`` and
``snapshot`` keys are read as they always were, and its commits write its ledger there."""

META_TRACE = "trace"
"""Field of ``meta``: the W3C traceparent of the thread's root span, set when the thread is
created with tracing on; every later run and delivery of the thread joins that trace."""


def ledger(thread_id: str) -> str:
    """HASH call_id -> started | done | unknown: side-effect calls, recorded before they run.
    Only threads made before ``LAYOUT`` have one: a newer thread's ledger is in its state."""
    return f"{PREFIX}:{{{thread_id}}}:ledger"


def requests(thread_id: str) -> str:
    """HASH request_id -> JSON record, with the ``request_field`` suffixes below, and the
    thread's outbox items at ``outbox_body``: its long values, in one hash table."""
    return f"{PREFIX}:{{{thread_id}}}:requests"


def outbox(thread_id: str) -> str:
    """HASH of the ``outbox_field`` suffixes below: each item's delivery, short values only,
    so that Redis keeps the hash a listpack. The item's JSON is in ``requests`` at
    ``outbox_body``; an earlier version kept it here, at its id (read where it is found)."""
    return f"{PREFIX}:{{{thread_id}}}:outbox"


OUTBOX_BODY = "o:"
"""Field prefix of ``requests``: ``o:<outbox_id>`` -> the item's JSON. An item is longer
than Redis's ``hash-max-listpack-value`` (64 B), which turns a whole hash into a hash table
(some 70 B a field); the request records there do that already, so the outbox hash keeps
only short fields and stays a listpack (bench: 168 B a thread). No request id is 'o'
(model.ids), so no request field begins so."""


def outbox_body(outbox_id: str) -> str:
    """The ``requests`` field of an outbox item's JSON."""
    return OUTBOX_BODY + outbox_id


def snapshot(thread_id: str) -> str:
    """HASH: what a run needs of the log before ``SNAPSHOT_UPTO`` (agent.snapshot), so it
    loads that and the tail after it. Derived from the log, which it never replaces: written
    by the fenced commit that writes past it, rebuilt from the log when missing or unreadable."""
    return f"{PREFIX}:{{{thread_id}}}:snapshot"


SNAPSHOT_UPTO = "upto"
"""Field of ``snapshot``: how many events of the log it covers (the tail starts there)."""
SNAPSHOT_BODY = "body"
"""Field of ``snapshot``: its JSON (agent.snapshot.Snapshot, with its format version)."""


# ---- hash fields ------------------------------------------------------------------------
# state: execution state (model.records.ThreadState reads the first six)
STATUS = "status"
"""idle | running | awaiting_human | done | failed."""
STEPS = "steps"
ERRORS = "errors"
"""Consecutive errors of the thread (three and a human is asked). Not written while it is 0
and the hash does not have it (store.threads: UNWRITTEN)."""
UNWRITTEN = {ERRORS: "0"}
"""State fields a commit leaves out while they hold this value and the hash has no such field:
their absence reads the same (store.reads.state_of), and a thread that never erred has no
``errors`` field (bench: 200 -> 184 B a finished thread's state)."""
LEASE_OWNER = "lease_owner"
LEASE_TOKEN = "lease_token"
"""The fencing token: incremented by every acquire, checked by every commit."""
LEASE_UNTIL = "lease_until"
"""Lease deadline in Redis server time (ms)."""
UNPUBLISHED = "unpublished"
"""JSON of index entries and outbox pointers a commit stored but has not published yet."""
QUESTION = "question"
"""The request id of the thread's latest question: a reply in the conversation answers it."""
LEDGER = "l:"
"""Field prefix of ``state``: ``l:<call_id>`` -> started | done | unknown (``LAYOUT``)."""
HAS_SNAPSHOT = "snapshot"
"""Field of ``state``: '1' once a commit wrote the thread's ``snapshot`` key (the acquire
reads that key only then)."""

# meta: what the thread is
META_FIELDS = ("agent", "origin", "created")
"""An earlier version wrote ``thread_id`` too, which the key names (some 48 B a thread)."""

# requests: <request_id> -> JSON record, and <request_id>:<suffix> ->
REQUEST_STATUS = "status"
"""pending | answered | expired."""
REQUEST_ANSWER = "answer"
"""JSON of the human's answer (the event, without the request id the field names), written
with the status by earlier versions; read where present. The answer is now read from the
thread's log instead (store.reads.answer_in): some 260 B a request fewer in a hash table."""
REQUEST_APPROVALS = "approvals"
"""How many distinct people approved so far (an approval with a quorum stays pending)."""
REQUEST_BY = "by"
"""``<request_id>:by:<person>``: set when that person's approval was counted (once each)."""
REQUEST_SENT = "sent"
"""Provider id of the message that last offered the request (a Slack ts, a Message-ID)."""

# outbox: <outbox_id> -> JSON item, and <outbox_id>:<suffix> -> (short: one per message)
OUTBOX_STATUS = "s"
"""pending | sending | sent | failed | unknown; ``sending:<ms>`` a commit's own claim, with
its deadline (OUTBOX_CLAIM_UNTIL)."""
OUTBOX_ATTEMPTS = "a"
"""Not written by a commit's own claim (store.threads: its first attempt, 'sending')."""
OUTBOX_CLAIM_UNTIL = "c"
"""While 'sending': the claim's deadline (server ms); past it, the attempt is stale. A
commit's own claim (store.threads) writes its deadline into the status instead
(``sending_until``), which its settle writes over: no field left to delete, or to write ''
over as an earlier version's settle did (read only while 'sending'). Two fields a message
fewer in a finished thread's outbox hash, a size class down (bench: 216 -> 168 B)."""


def sending_until(until_ms: int) -> str:
    """OUTBOX_STATUS of an item a commit claimed, until ``until_ms`` (scripts.OUTBOX_CLAIM
    and store.reads read the two parts)."""
    return f"sending:{until_ms}"


OUTBOX_PROVIDER_ID = "p"
"""Not written when it is the item's own id (REST, a handoff): a sent item without one has it."""
OUTBOX_ERROR = "e"
OUTBOX_PROVIDER_STATUS = "d"
"""What the provider reported later, comma-separated in arrival order, each status once
(Twilio's queued, sent, delivered, undelivered, failed, read)."""


def request_field(request_id: str, suffix: str) -> str:
    return f"{request_id}:{suffix}"


def outbox_field(outbox_id: str, suffix: str) -> str:
    return f"{outbox_id}:{suffix}"


def thread_keys(thread_id: str) -> list[str]:
    """All keys of one thread (for MEMORY USAGE, deletion, and scripts)."""
    return [
        f(thread_id)
        for f in (events, inbox, seen, state, meta, ledger, requests, outbox, snapshot, calls)
    ]


# ---- shared -----------------------------------------------------------------------------
RUNS = f"{PREFIX}:{{work}}:runs"
"""STREAM of thread ids that have something to do; consumer group RUNS_GROUP."""
RUNS_GROUP = "workers"

OUTBOX = f"{PREFIX}:{{outbox}}:stream"
"""STREAM of (thread, outbox id) pointers to deliver; consumer group OUTBOX_GROUP."""
OUTBOX_GROUP = "senders"
OUTBOX_RETRY = f"{PREFIX}:{{outbox}}:retry"
"""ZSET of 'thread|outbox id' scored by the time (ms) the item is to be looked at again: a
retry's due time, or the deadline of the claim a commit made for its own process's
dispatcher (the item is recovered from there should that process die; store.outbox)."""

THREADS = f"{PREFIX}:{{index}}:threads"
"""ZSET of thread ids scored by creation time (ms)."""
PENDING = f"{PREFIX}:{{index}}:pending"
"""ZSET of pending request ids scored by creation time (ms)."""
REQUEST_THREAD = f"{PREFIX}:{{index}}:request-thread"
"""HASH request id -> thread id."""
DEADLINES = f"{PREFIX}:{{index}}:deadlines"
"""ZSET of pending request ids with a deadline, scored by it (ms)."""
TIMERS = f"{PREFIX}:{{index}}:timers"
"""ZSET of approval timers (a later route stage, a reminder), scored by when due (ms).
Members are ``timer_member`` strings; firing one appends to its thread's inbox, deduplicated
by ``timer_dedupe`` in the thread's ``seen`` set, so it fires once across all workers."""
TIMERS_BATCH = 100
"""At most this many due timers are fired per poll (the rest wait for the next one)."""


def timer_member(thread_id: str, timer: str) -> str:
    """A member of TIMERS: 'thread|timer id'."""
    return f"{thread_id}|{timer}"


def timer_dedupe(timer: str) -> str:
    """The ``seen`` entry of a timer that fired (a provider id never starts with 'timer:')."""
    return f"timer:{timer}"


PENDING_GAUGE_LIMIT = 10_000


# ---- shared, one of each per partition (store.partitions) ----------------------------------
# On a Redis Cluster one shared key sits on one slot, so every wake-up and delivery would go
# through one shard: each of the keys above exists once per partition, partition p > 0 under
# the tag ``<tag>-<p>``. Partition 0 keeps the names above, so a single server with the
# default of one partition keeps the keys it always had. A thread's work (runs, outbox, its
# line in the threads index) lives in the partition of its thread id; a request's index
# entries (pending, deadlines, request -> thread) in the partition of its request id, as
# that is the id they are looked up by.


def _part(key: str, p: int) -> str:
    """``sb:{work}:runs`` -> ``sb:{work-3}:runs``: a hash tag of its own per partition."""
    if p == 0:
        return key
    before, _, after = key.partition("}")
    return f"{before}-{p}}}{after}"


def runs(p: int) -> str:
    """RUNS of partition ``p``."""
    return _part(RUNS, p)


def outbox_stream(p: int) -> str:
    """OUTBOX of partition ``p``."""
    return _part(OUTBOX, p)


def outbox_retry(p: int) -> str:
    """OUTBOX_RETRY of partition ``p``: the same tag as its stream (RETRY_DUE moves between
    the two in one script)."""
    return _part(OUTBOX_RETRY, p)


def threads(p: int) -> str:
    """THREADS of partition ``p``."""
    return _part(THREADS, p)


def pending(p: int) -> str:
    """PENDING of partition ``p``."""
    return _part(PENDING, p)


def request_thread(p: int) -> str:
    """REQUEST_THREAD of partition ``p``."""
    return _part(REQUEST_THREAD, p)


def deadlines(p: int) -> str:
    """DEADLINES of partition ``p``."""
    return _part(DEADLINES, p)


"""At most this many pending requests are read per /metrics scrape (two round trips)."""


def ref(channel: str, provider_id: str) -> str:
    """STRING 'thread|request|outbox id' for a message we sent, by the provider's id of it.

    How a human's reply (Slack thread_ts, email In-Reply-To, an SMS code) finds its thread.
    """
    return f"{PREFIX}:ref:{channel}:{provider_id}"


REF_TTL_SECONDS = 90 * 24 * 3600
"""Replies to a message older than this no longer thread by reference."""

CHANGES = f"{PREFIX}:changes"
"""Pub/sub CHANNEL (no key, nothing stored): a thread id, published by every script that
changes what a watcher sees of that thread. Fire and forget: a subscriber that was away
reads everything again (store.changes)."""


# ---- long-running calls and handoffs (store.calls) ---------------------------------------
def calls(thread_id: str) -> str:
    """HASH call_id -> JSON of a started call (tool, timeout), and ``<call_id>:s`` -> its status
    (CALL_* below): the record a late result is checked against, once."""
    return f"{PREFIX}:{{{thread_id}}}:calls"


CALL_WAITING = "waiting"
"""Opened before the tool runs: a result (callback, child's answer) is taken once."""
CALL_REPORTED = "reported"
CALL_TIMED_OUT = "timed_out"
CALL_CLOSED = "closed"
"""The tool answered at once, or the thread was cancelled: a late result is refused."""
CALL_STATUS = "s"


def call_field(call_id: str, suffix: str) -> str:
    return f"{call_id}:{suffix}"


CALL_THREAD = f"{PREFIX}:{{index}}:call-thread"
"""HASH call id -> thread id: how ``POST /v1/calls/{id}/result`` finds its thread."""


def call_thread(p: int) -> str:
    """CALL_THREAD of partition ``p`` (a call id's entry is in the partition of the call id)."""
    return _part(CALL_THREAD, p)


CALLBACK_KEY = f"{PREFIX}:callback-key"
"""STRING: the HMAC key of per-call result URLs, made once by whichever process needs it
first (SET NX), so API and workers agree with nothing to configure."""
CALL_TIMER_KIND = "timeout"
"""The kind part of a call's timeout timer id in TIMERS: ``<call_id>:timeout:0``."""

META_PARENT = "parent"
"""Field of ``meta``: JSON of model.records.ParentLink, set on a thread another agent's
handoff started."""


# ---- schedules (agent.scheduler) ------------------------------------------------------------
def schedule_cursor(name: str) -> str:
    """STRING: epoch ms of the latest tick of schedule ``name`` that was dealt with (its
    thread started, or skipped as missed). Only moves forward (store.schedules.ADVANCE), so
    every worker agrees which ticks are still to come, across restarts."""
    return f"{PREFIX}:schedule:{name}:cursor"


def schedule_dedupe(tick_ms: int) -> str:
    """The ``seen`` entry of a tick's message on its thread (the thread id derives from the
    schedule and the tick): two workers starting the same tick store it once."""
    return f"tick:{tick_ms}"
