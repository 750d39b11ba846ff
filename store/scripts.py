"""The Lua scripts: every multi-key change of a thread happens atomically in one of these.

Each script touches the keys of one thread only (one hash tag), or shared keys of one tag
only, so each stays on one Cluster slot. Times come from the Redis server's clock, so
workers on different hosts agree on lease deadlines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from store import keys

Then = Callable[[aioredis.client.Pipeline], None]


async def run_then(
    client: aioredis.Redis,
    script: AsyncScript,
    keys: list[str],
    args: list[Any],
    then: Then | None = None,
    before: Then | None = None,
) -> list[Any]:
    """A script and the commands ``then`` adds, in one pipeline: one round trip.
    ``before`` adds commands that must take effect ahead of the script (a channel's own
    records of a message the script then announces); they run before it, in the same
    pipeline, and their replies are not returned.

    redis-py checks a pipeline's scripts with SCRIPT EXISTS before every execute, a round
    trip of its own; we call the script by its SHA instead. Should Redis have lost it (a
    restart), the script is loaded and the whole pipeline runs again: the commands ``then``
    adds are wake-ups, index updates and acknowledgements, and those of ``before`` records
    that a repeat leaves as they were (SET NX, a list its reader deduplicates), so both
    tolerate running twice.

    On a Redis Cluster, two round trips: a cluster pipeline sends each node its share at
    once, in no order across nodes, so a wake-up on a shared key's node could run before
    the script on the thread's node that it announces (a worker would find no thread, or
    an empty inbox, and acknowledge the wake-up away). The script first, then the rest
    (and ``before``'s commands ahead of both).
    """
    if isinstance(client, RedisCluster):
        if before is not None:
            first = client.pipeline(transaction=False)
            before(first)
            await first.execute()
        result = await script(keys=keys, args=args)
        if then is None:
            return [result]
        pipe = client.pipeline(transaction=False)
        then(pipe)
        return [result, *await pipe.execute()]
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        if before is not None:
            before(pipe)
        ahead = len(pipe)
        # Through execute_command: redis-py's cluster pipeline refuses its evalsha() method
        # but routes EVALSHA by its keys like any other command.
        pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        if then is not None:
            then(pipe)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        if not isinstance(results[ahead], NoScriptError) or attempt:
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return results[ahead:]
        await client.script_load(script.script)
    raise AssertionError("unreachable")


async def call(
    client: aioredis.Redis, script: AsyncScript, keys: list[str], args: list[Any]
) -> Any:
    """``script(keys=keys, args=args)``, the same EVALSHA and the same reload should Redis
    have lost the script, without redis-py's ``AsyncScript.__call__`` in between (a module
    import, tuple copies, a pipeline check, the ``evalsha`` wrapper: the lease's acquire and
    every commit go through here)."""
    command = client.execute_command
    try:
        return await command("EVALSHA", script.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
    except NoScriptError:
        script.sha = await client.script_load(script.script)
        return await command("EVALSHA", script.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]


async def run_each(
    client: aioredis.Redis, script: AsyncScript, calls: list[tuple[list[str], list[Any]]]
) -> list[Any]:
    """One script over several key sets (one per partition), in one pipeline: one round
    trip on a server, one per node on a cluster. Loaded and repeated as in ``run_then``, so
    only for scripts that may run twice."""
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for names, args in calls:
            pipe.execute_command("EVALSHA", script.sha, len(names), *names, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        if attempt or not any(isinstance(r, NoScriptError) for r in results):
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return results
        await client.script_load(script.script)
    raise AssertionError("unreachable")


# Tells live views (store.changes) that the thread of KEYS[1] changed: its hash tag is the
# thread id. PUBLISH stores nothing and touches no key, so the script stays on one slot.
_CHANGED = f"""
local function changed()
  redis.call('PUBLISH', '{keys.CHANGES}', string.match(KEYS[1], '{{(.-)}}'))
end
"""

# Shared prologue: server time in ms, and a chunked RPUSH (Lua's unpack has a stack limit).
# The state fields of the thread's layout (store.keys.LAYOUT), for the scripts that read
# or write them.
_LAYOUT = f"""
local LAYOUT, HAS_SNAPSHOT = '{keys.LAYOUT}', '{keys.HAS_SNAPSHOT}'
"""
_HELPERS = """
local function push_all(key, items, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call('RPUSH', key, unpack(items, i, j))
    i = j + 1
  end
end
local function drain(inbox, events)
  -- LPOP with a count (Redis 6.2, as XAUTOCLAIM): the list read and removed in one command
  local items = redis.call('LPOP', inbox, 2147483647)
  if not items then return {} end
  push_all(events, items, 1, #items)
  return items
end
"""
_PRELUDE = (
    _CHANGED
    + """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
    + _HELPERS
)

INBOUND = (
    _LAYOUT
    + """
-- KEYS: inbox seen meta, and on a single server the runs stream and the threads index
-- ARGV: dedupe_key event_json create(0|1) thread_id agent origin created_iso
--       (origin: store.reads.stored_origin)
--       traceparent parent_json created_ms ('' when there is none)
-- Returns 2 stored on a thread this call created, 1 stored, 0 a duplicate, -1 no thread.
-- The wake-up (and a new thread's index entry) ride here when the server holds every key
-- (store.publication.runs_inline): one atomic write, never a wake-up for a thread that is
-- not there. A duplicate still wakes the thread (harmless: a run with nothing to do ends).
local created = false
if redis.call('EXISTS', KEYS[3]) == 0 then
  if ARGV[3] ~= '1' then return -1 end
  -- No state hash yet: an absent one reads as idle (store.reads.state_of); the first
  -- acquire writes it.
  -- Not the thread id: the key names it (an earlier version wrote it too, store.reads.meta_of).
  redis.call('HSET', KEYS[3], 'agent', ARGV[5], 'origin', ARGV[6], 'created', ARGV[7],
             LAYOUT, '1')
  created = true
end
-- Before the wake-up: the first run reads them.
if ARGV[8] ~= '' then redis.call('HSETNX', KEYS[3], '"""
    + keys.META_TRACE
    + """', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSETNX', KEYS[3], '"""
    + keys.META_PARENT
    + """', ARGV[9]) end
local stored = 1
if ARGV[1] ~= '' and redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  stored = 0
else
  redis.call('RPUSH', KEYS[1], ARGV[2])  -- the store tells the change feed (store.changes)
end
if KEYS[4] then
  redis.call('XADD', KEYS[4], '*', 't', ARGV[4])
  if ARGV[3] == '1' then redis.call('ZADD', KEYS[5], 'NX', ARGV[10], ARGV[4]) end
end
if stored == 1 and created then return 2 end  -- stored, and the thread is new
return stored
"""
)

INBOUND_UNASKED = (
    """
-- KEYS: state calls, then INBOUND's.  ARGV: INBOUND's.
-- INBOUND, unless the thread has ever asked a question or started a call (a handoff's
-- child may have asked in its stead): -2, nothing written. A channel that takes a reply as
-- an answer stores a message this way without reading the question first, and looks for
-- it only on -2 (store.port.ChannelPort.open_question). The question field is never taken
-- off again, so -2 asks for no more than that read would have found.
if redis.call('HEXISTS', KEYS[1], '"""
    + keys.QUESTION
    + """') == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return -2
end
-- INBOUND reads its keys by position: take these two off the front.
table.remove(KEYS, 1)
table.remove(KEYS, 1)
"""
    + INBOUND
)

ANSWER = """
-- KEYS: requests inbox seen, and on a single server the runs stream, the pending and the
--       deadlines indexes (store.publication.runs_inline)
-- ARGV: request_id event_json dedupe_key mode, then
--   mode 'rules': check(0|1) channel responder approval(0|1) arguments_hash grant
--     The script reads the record and applies the answer rules itself, so that answering
--     takes one round trip: who may answer (model.records.RequestRecord.may_answer), the
--     arguments the approval binds to (stamped into the event with the approver as a
--     person), the grants offered, the quorum. ``event_json`` is the response without
--     ``arguments_hash`` and ``person``. Not for an edit (it needs the record's arguments
--     compared in Python, store.edits): the client reads the record and sends 'set'.
--   mode 'set': person needed completes (the client checked the rules against the record)
-- Replies {code, record_json, detail}. Codes: 1 answered; 3 counted, the quorum not
-- complete; 0 already answered (detail: the status, or '' for a copy of a message already
-- stored); 2 counted before; 4 an edit or grant that does not complete the quorum (detail:
-- needed); 5 not allowed (detail: channel:responder); 6 other arguments (detail: expected);
-- 7 grant not offered; -1 no such request.
-- The answer is not kept beside the request: it is the event pushed here, which the
-- thread's log keeps (store.reads.answer_in); a request an earlier version answered has it
-- in a ``<rid>:answer`` field, read as before. An approval of a quorum counts once per
-- person; a single approval answers at once and writes no count.
local rid = ARGV[1]
local got = redis.call('HMGET', KEYS[1], rid, rid .. ':status')
if not got[1] then return {-1, '', ''} end
local status = got[2] or 'pending'
if status ~= 'pending' then return {0, got[1], status} end
local rec = cjson.decode(got[1])
local function list(v) if type(v) == 'table' then return v end return {} end
local function str(v) if type(v) == 'string' and v ~= '' then return v end return nil end
local event, person, needed, completes = ARGV[2], ARGV[5], 0, false
if ARGV[4] == 'rules' then
  local channel, responder = ARGV[6], ARGV[7]
  local target = channel .. ':' .. responder
  person = str(list(rec.people)[target]) or target
  if ARGV[5] == '1' and rec.kind ~= 'question' then
    local allowed = not (rec.self_approval == false and person == rec.requester)
    if allowed and #list(rec.approvers) > 0 then
      allowed = false
      for _, approver in ipairs(list(rec.approvers)) do
        local sep = string.find(approver, ':', 1, true)
        local ch, address = approver, ''
        if sep then
          ch, address = string.sub(approver, 1, sep - 1), string.sub(approver, sep + 1)
        end
        if ch == channel and (address == '*' or address == responder) then allowed = true end
      end
    end
    if not allowed then return {5, got[1], target} end
  end
  if ARGV[8] == '1' then
    local expected, given, grant = str(rec.arguments_hash), str(ARGV[9]), str(ARGV[10])
    local extra = ''
    if expected then
      if given and given ~= expected then return {6, got[1], expected} end
      extra = ',"arguments_hash":' .. cjson.encode(expected)
    end
    if grant then
      local offered = false
      for _, g in ipairs(list(rec.grants)) do offered = offered or g == grant end
      if not offered then return {7, got[1], grant} end
    end
    event = string.sub(event, 1, -2) .. extra .. ',"person":' .. cjson.encode(person) .. '}'
    needed = tonumber(rec.approvals_needed) or 1
    completes = grant ~= nil
  end
else
  needed, completes = tonumber(ARGV[6]), ARGV[7] == '1'
end
if needed > 1 and completes then  -- before the dedupe: a refused message stores nothing
  if redis.call('HEXISTS', KEYS[1], rid .. ':by:' .. person) == 1 then return {2, got[1], ''} end
  local given = tonumber(redis.call('HGET', KEYS[1], rid .. ':approvals') or '0')
  if given + 1 < needed then return {4, got[1], tostring(needed)} end
end
if ARGV[3] ~= '' and redis.call('SADD', KEYS[3], ARGV[3]) == 0 then return {0, got[1], ''} end
local code = 1
if needed > 1 then
  if redis.call('HSETNX', KEYS[1], rid .. ':by:' .. person, '1') == 0 then
    return {2, got[1], ''}
  end
  if redis.call('HINCRBY', KEYS[1], rid .. ':approvals', 1) < needed then code = 3 end
end
if code == 1 then
  -- Answered: nothing binds to the call's id and hash any more; the record says the
  -- arguments the hash is of, the log's approval_request the id. Its last fields
  -- (RequestRecord.stored) are cut off in the same HSET (a hash-table value two size
  -- classes smaller); a record in another form is kept as it is.
  local fields, hash = {rid .. ':status', 'answered'}, str(rec.arguments_hash)
  if hash then
    local tail = ',"arguments_hash":"' .. hash .. '"}'
    if str(rec.call_id) then tail = ',"call_id":"' .. rec.call_id .. '"' .. tail end
    if string.sub(got[1], -#tail) == tail then
      fields[3], fields[4] = rid, string.sub(got[1], 1, -#tail - 1) .. '}'
    end
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end
redis.call('RPUSH', KEYS[2], event)  -- the store tells the change feed (store.changes)
if KEYS[4] then
  if code == 1 then
    redis.call('ZREM', KEYS[5], rid)
    if str(rec.deadline) then redis.call('ZREM', KEYS[6], rid) end  -- indexed only with one
  end
  redis.call('XADD', KEYS[4], '*', 't', string.match(KEYS[1], '{(.-)}'))
end
return {code, got[1], ''}
"""

WITHDRAW = (
    _CHANGED
    + """
-- KEYS: state requests    ARGV: token request_id
-- The lease holder withdraws a request, unless it was answered or expired first.
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[1] then return -1 end
local status = redis.call('HGET', KEYS[2], ARGV[2] .. ':status')
if status == 'withdrawn' then return 1 end  -- a run that withdrew it stopped before its commit
if status ~= 'pending' then return 0 end
redis.call('HSET', KEYS[2], ARGV[2] .. ':status', 'withdrawn')
changed()
return 1
"""
)

EXPIRE = (
    _CHANGED
    + """
-- KEYS: requests inbox
-- ARGV: request_id note_json
-- A deadline passed: the request expires unless it was answered first.
local status = redis.call('HGET', KEYS[1], ARGV[1] .. ':status')
if status ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1] .. ':status', 'expired')
redis.call('RPUSH', KEYS[2], ARGV[2])
changed()
return 1
"""
)

TIMER_FIRE = (
    _CHANGED
    + """
-- KEYS: requests inbox seen
-- ARGV: request_id dedupe_key event_json
-- A timer came due: its event joins the inbox once (the seen set dedupes a second worker
-- firing the same timer), and only while its request is still pending.
if redis.call('HGET', KEYS[1], ARGV[1] .. ':status') ~= 'pending' then return 0 end
if redis.call('SADD', KEYS[3], ARGV[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[3])
changed()
return 1
"""
)

ACQUIRE = (
    _LAYOUT
    + _HELPERS
    + """
-- KEYS: state inbox events ledger meta snapshot
-- ARGV: owner ttl_ms known now_ms
--   known: '0', the meta is read and answered; '1' / '2': the caller has it already, of a
--     thread with / without the layout, so the state's existence is the thread's (an
--     acquire wrote it; store.holding.MetaCache)
--   now_ms: the server's time as the caller knows it from an earlier reply, not older than
--     store.holding.ServerClock allows; '' to ask TIME
local now
if ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  redis.replicate_commands()
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- The state hash is read once and answered as it stands after the lease is taken (one
-- HGETALL for the check and the reply; the token is counted here, not by HINCRBY). The log
-- is returned from the snapshot's position on, with the snapshot (store.snapshot), and
-- the server's now: the holder's commits pass it on, advanced, instead of asking TIME.
local meta = {}
if ARGV[3] == '0' then
  meta = redis.call('HGETALL', KEYS[5])
  if #meta == 0 then return {-1} end
end
local flat = redis.call('HGETALL', KEYS[1])
if ARGV[3] ~= '0' and #flat == 0 then return {-1} end
local state = {}
for k = 1, #flat, 2 do state[flat[k]] = flat[k + 1] end
local owner = state['lease_owner']
if owner and owner ~= '' and tonumber(state['lease_until'] or 0) > now then return {0} end
local first = not state['lease_token']
local token = tostring(tonumber(state['lease_token'] or '0') + 1)
local untl = tostring(now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'lease_token', token, 'lease_owner', ARGV[1], 'lease_until', untl,
           'status', 'running')
state['lease_token'], state['lease_owner'], state['lease_until'] = token, ARGV[1], untl
state['status'] = 'running'
flat = {}
for f, v in pairs(state) do flat[#flat + 1] = f; flat[#flat + 1] = v end
local drained = drain(KEYS[2], KEYS[3])
-- Never leased before: nobody wrote its log but this drain (only a holder writes the log).
if first then return {tonumber(token), flat, drained, {}, meta, 0, '', now} end
-- A thread made by this version (its meta names the layout) keeps its ledger in the state
-- hash (store.keys.LAYOUT) and a snapshot only where the state says so; one from before has
-- both read from their own keys.
local layout = ARGV[3] == '1'
for k = 1, #meta, 2 do layout = layout or meta[k] == LAYOUT end
local ledger = {}
if not layout then ledger = redis.call('HGETALL', KEYS[4]) end
local from, body = 0, ''
if not layout or state[HAS_SNAPSHOT] then
  local snap = redis.call('HMGET', KEYS[6], 'upto', 'body')
  from = tonumber(snap[1] or '0') or 0
  -- not this log's: load it whole (no snapshot: nothing to check)
  if from > 0 and from > redis.call('LLEN', KEYS[3]) then from = 0 end
  body = snap[2]
end
return {tonumber(token), flat, redis.call('LRANGE', KEYS[3], from, -1), ledger, meta, from,
        from > 0 and body or '', now}
"""
)

COMMIT = (
    _LAYOUT
    + _HELPERS
    + """
-- KEYS: state events inbox ledger requests outbox snapshot, then the shared keys the ops name
-- ARGV: token ttl_ms release drain renew now_ms, then counted groups:
--       events (json...), state (field value...), ledger (call_id value...),
--       records for requests/outbox hashes (field value...), snapshot (upto body, or none),
--       ops on shared keys (op key_index a b, ...; see store.publication)
-- now_ms is the server's time as the lease holder knows it: the acquire's TIME plus the
-- holder's monotonic time since (store.threads.Held.now_ms), a little behind the server's,
-- so deadlines set from it (the lease's; a new item's claim, sent with the item) are a
-- little early, never late. No TIME in a commit.
-- A commit that keeps the lease writes the state only with what changed (the client sends
-- only that) and renews the lease only when asked (renew: store.threads.Held), so a
-- mid-run commit of a 1-2 command job costs no TIME and no HSET of fields as they were.
-- It tells the change feed itself only when it releases or merged input: a mid-run change
-- waits a moment for the feed (store.threads: ThreadStore.feed_delay), so that a run's
-- steps in quick succession are one message, the release's.
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[1] then return {-1} end
local now = tonumber(ARGV[6])
local i = 7
local n = tonumber(ARGV[i])
if n > 0 then push_all(KEYS[2], ARGV, i + 1, i + n) end
i = i + n + 1
local fields = {}  -- the state, written below in one HSET with the lease's fields
for k = i + 1, i + tonumber(ARGV[i]) do fields[#fields + 1] = ARGV[k] end
i = i + #fields + 1
n = tonumber(ARGV[i])
if n > 0 then redis.call('HSET', KEYS[4], unpack(ARGV, i + 1, i + n)) end
i = i + n + 1
n = tonumber(ARGV[i])
if n > 0 then redis.call('HSET', KEYS[5], unpack(ARGV, i + 1, i + n)) end
i = i + n + 1
n = tonumber(ARGV[i])
if n > 0 then redis.call('HSET', KEYS[6], unpack(ARGV, i + 1, i + n)) end
i = i + n + 1
n = tonumber(ARGV[i] or '0')
-- A snapshot covers a position of this log, never one past its end.
if n > 0 and tonumber(ARGV[i + 1]) <= redis.call('LLEN', KEYS[2]) then
  redis.call('HSET', KEYS[7], 'upto', ARGV[i + 1], 'body', ARGV[i + 2])
  fields[#fields + 1], fields[#fields + 2] = HAS_SNAPSHOT, '1'
end
i = i + n + 1
local drained = {}
if ARGV[4] == '1' then drained = drain(KEYS[3], KEYS[2]) end
local released = ARGV[3] == '1' and #drained == 0
local n_fields = #fields
if released then
  fields[n_fields + 1], fields[n_fields + 2] = 'lease_owner', ''
  fields[n_fields + 3], fields[n_fields + 4] = 'lease_until', 0
elseif ARGV[3] == '1' or ARGV[5] == '1' then
  fields[n_fields + 1], fields[n_fields + 2] = 'lease_until', now + tonumber(ARGV[2])
end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
n = tonumber(ARGV[i] or '0')
for j = i + 1, i + n, 4 do
  local op, key, a, b = ARGV[j], KEYS[tonumber(ARGV[j + 1])], ARGV[j + 2], ARGV[j + 3]
  if op == 'zadd' then redis.call('ZADD', key, a, b)
  elseif op == 'hset' then redis.call('HSET', key, a, b)
  elseif op == 'xadd' then redis.call('XADD', key, '*', 't', a, 'o', b)
  elseif op == 'ack' and released then
    redis.call('XACK', key, a, b)  -- deleted with others by the stream's trim (store.streams)
  end
end
if released then return {1, 1, drained} end
return {1, 0, drained}
"""
)

EXTEND = (
    _PRELUDE
    + """
-- KEYS: state    ARGV: token ttl_ms
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lease_until', now + tonumber(ARGV[2]))
return 1
"""
)

OUTBOX_CLAIM = (
    _PRELUDE
    + """
-- KEYS: outbox requests    ARGV: outbox_id claim_ms
-- Returns {state, item_json, attempts[, request_id, request_json]}; state is 'go', 'stale'
-- (a claim ran out mid-send: outcome unknown), 'busy', 'done' or 'missing'. The request is
-- there for an item stored without what its request says (OutboxItem.stored: no text).
-- The item is in the requests hash (store.keys.OUTBOX_BODY), or, as an earlier version
-- stored it, in the outbox hash at its id.
local id = ARGV[1]
local got = redis.call('HMGET', KEYS[1], id, id .. ':s', id .. ':a', id .. ':c')
local item = got[1]
if not item then item = redis.call('HGET', KEYS[2], 'o:' .. id) end
if not item then return {'missing'} end
local status, claimed = got[2] or 'pending', got[4]
-- A commit's own claim: 'sending:<deadline>' (store.keys.sending_until), and no count (its
-- first attempt).
local sep = string.find(status, ':', 1, true)
if sep then status, claimed = string.sub(status, 1, sep - 1), string.sub(status, sep + 1) end
local attempts = tonumber(got[3] or (status == 'sending' and '1' or '0'))
if status == 'sent' or status == 'failed' or status == 'unknown' then return {'done'} end
local verdict = 'go'
if status == 'sending' then
  if (tonumber(claimed or '0') or 0) > now then return {'busy'} end  -- '': settled
  verdict = 'stale'
end
redis.call('HSET', KEYS[1], id .. ':s', 'sending', id .. ':c', now + tonumber(ARGV[2]),
           id .. ':a', attempts + 1)
local body = cjson.decode(item)
if body.text == nil and type(body.request_id) == 'string' then
  local rid = body.request_id
  return {verdict, item, attempts + 1, rid, redis.call('HGET', KEYS[2], rid)}
end
return {verdict, item, attempts + 1}
"""
)

OUTBOX_SETTLE = """
-- KEYS: outbox inbox
-- ARGV: outbox_id status provider_id error note_json attempt
--   attempt: '2' a commit's own claim (store.threads: it wrote no count), '1' another
--   first attempt, '0' a later one
-- Records how a delivery ended; a failure also leaves a note for the thread's next run.
-- Once it has ended (not 'pending' again for a retry) the claim's deadline is dead, and so
-- is an attempt count of one, which readers assume for a settled item without one: fields
-- the hash that outlives the thread does without (store.reads). So is a provider id that is
-- the item's own id (REST, a handoff): readers of a sent item assume it. A commit's own
-- claim wrote no count, and its deadline in the status this HSET writes over
-- (store.keys.OUTBOX_CLAIM_UNTIL): no field to delete (an earlier version's commit wrote
-- one, left dead: read only while 'sending'); a retry writes the count it did without.
local fields = {ARGV[1] .. ':s', ARGV[2]}
if ARGV[3] ~= '' and ARGV[3] ~= ARGV[1] then fields[3], fields[4] = ARGV[1] .. ':p', ARGV[3] end
if ARGV[4] ~= '' then fields[#fields + 1], fields[#fields + 2] = ARGV[1] .. ':e', ARGV[4] end
-- A retry follows an attempt: without a count, it was a commit's own claim's first.
if ARGV[2] == 'pending' and redis.call('HEXISTS', KEYS[1], ARGV[1] .. ':a') == 0 then
  fields[#fields + 1], fields[#fields + 2] = ARGV[1] .. ':a', '1'
end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[2] ~= 'pending' and ARGV[6] ~= '2' then
  if ARGV[6] == '1' then redis.call('HDEL', KEYS[1], ARGV[1] .. ':c', ARGV[1] .. ':a')
  else redis.call('HDEL', KEYS[1], ARGV[1] .. ':c') end
end
if ARGV[5] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[5]) end
return 1  -- the store tells the change feed (store.changes)
"""

OUTBOX_REPORT_FAILURE = (
    _CHANGED
    + """
-- KEYS: outbox inbox
-- ARGV: outbox_id error event_json
-- A failure reported after the send (bounce, callback): once per item, never over another.
local got = redis.call('HMGET', KEYS[1], ARGV[1] .. ':s', ARGV[1] .. ':p')
local status = got[1]
if status == 'failed' or status == 'unknown' then return 0 end
-- A sent item without a provider id was sent under its own id (OUTBOX_SETTLE): once it is no
-- longer 'sent', readers cannot tell that, so the id is written out.
if status == 'sent' and not got[2] then redis.call('HSET', KEYS[1], ARGV[1] .. ':p', ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1] .. ':s', 'failed', ARGV[1] .. ':e', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
changed()
return 1
"""
)

OUTBOX_PROVIDER_STATUS = (
    _CHANGED
    + f"""
-- KEYS: outbox    ARGV: outbox_id status
-- Adds a status the provider reported (a delivery callback) to the item's list, once.
local id = ARGV[1]
-- An item's status field, written with it; an earlier version's item is known by its id.
if redis.call('HEXISTS', KEYS[1], id .. ':s') == 0 and redis.call('HEXISTS', KEYS[1], id) == 0
then return 0 end
local field = id .. ':{keys.OUTBOX_PROVIDER_STATUS}'
local seen = redis.call('HGET', KEYS[1], field) or ''
for status in string.gmatch(seen, '[^,]+') do
  if status == ARGV[2] then return 0 end
end
if seen ~= '' then seen = seen .. ',' end
redis.call('HSET', KEYS[1], field, seen .. ARGV[2])
changed()
return 1
"""
)

RETRY_DUE = (
    _PRELUDE
    + """
-- KEYS: retry_zset outbox_stream    ARGV: limit
-- Moves due retries back onto the outbox stream.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local sep = string.find(member, '|', 1, true)
  redis.call('XADD', KEYS[2], '*', 't', string.sub(member, 1, sep - 1),
             'o', string.sub(member, sep + 1))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""
)

CHANGED = _CHANGED
"""The ``changed()`` Lua function, for scripts kept beside their store module (store.calls)."""
