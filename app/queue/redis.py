"""The async queue on Redis, for gateways on several nodes sharing one queue.

Every key starts with ``faas-swarm-py:calls:`` (``P`` below):

- ``P:call:<call id>`` (``record_key``), a hash per call record: the fields of ``CallRecord``
  (the result as ``result_status``, ``result_headers`` JSON, ``result_body``,
  ``result_truncated``; the history as JSON), the request as stored (``payload``,
  ``AsyncCall.to_bytes``) so a finished call can be replayed, ``reference`` and ``max_inflight``
  for ``take``, and ``seq``, its place in the listings. A call still to hand out also has
  ``entry`` (its queue entry: the delivery's ``message_id``), ``handouts`` (the queue's attempt
  count), ``consumer`` while held, and ``cancelled`` while only its callback is to be told. A
  field that is None is absent.
- ``P:counter``, one INCR counter for every sequence number: ``seq``, ``entry`` and the tickets
  below. An entry number never comes back, so a late finish can never touch a newer hand-out.
- Where a call in the queue is: ``P:ready:<reference>``, one sorted set per function of its calls
  due now, by ticket (the oldest first); ``P:delayed``, released calls by the time (Redis's clock)
  they are due; ``P:held``, held calls by when they were claimed, for ``reclaim``.
- For ``take``: ``P:heads``, the functions that have calls ready, by when they were last served
  (a ticket taken then) or, not served since they came to have calls ready, their oldest call's ticket,
  and ``P:inflight``, a hash of how many calls of each function are held.
- For ``calls``, ``counts`` and ``expire``: sorted sets of call ids by ``seq`` (``P:all``,
  ``P:function:<name>``, ``P:namespace:<namespace>``, ``P:state:<state>``) and ``P:finished`` by
  finish time.

Each operation is one Lua script (``_SCRIPTS``) that changes the record, its indexes and its place
in the queue together, so a crash can never leave a call both finished and queued, or lost.
The scripts name keys themselves from the prefix: the queue needs one Redis server, not a cluster.

``take`` goes round the functions that have calls ready, the least recently served first, handing
out one call of each per round, as the SQLite queue does: the oldest due call of each function,
then the second of each, and so on; a function served goes to the back, so one function's burst
waits its turn within a take and across takes, however few calls each takes. A function holding
``max_inflight`` calls (the cap of the call at its head) is passed over, across every consumer,
until one of its calls is finished or released. A take costs O(count × (functions + log calls)),
however many calls wait.

``take`` polls while it waits, every ``_POLL_SECONDS``, like the SQLite queue: each poll is one
short script, and ``time.sleep`` lets gevent run other greenlets meanwhile.

An earlier version's keys (the stream ``faas-swarm-py:async`` with its group ``workers``, the
delayed set and the dead-letter stream) are moved into records on first use, in one transaction:
its calls queued again with their attempts, its dead letters DEAD with their reason, and bytes that
cannot be decoded kept as DEAD records under ids ``legacy-<entry id>`` (``legacy-dead-<entry id>``
for the dead letters).

Durability is Redis's: put returns when Redis has answered, and the call survives a Redis crash
only when the server runs with ``appendonly yes`` and ``appendfsync always`` (``everysec`` may lose
the last second). A warning is logged when the append-only file is off.

Every Redis failure (unreachable, timeout, out of memory, a failed disk write) raises
BackendUnavailable.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable, TypeVar

import redis

from app.errors import BackendUnavailable
from app.queue import (
    CANCELLED,
    DEAD,
    QUEUED,
    STATES,
    AsyncCall,
    CallFilter,
    CallRecord,
    CallResult,
    Delivery,
    Outcome,
    Run,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

PREFIX = "faas-swarm-py:calls:"
# An earlier version's keys, moved into records on first use.
LEGACY_STREAM = "faas-swarm-py:async"
LEGACY_DELAYED = "faas-swarm-py:async:delayed"
LEGACY_DEAD = "faas-swarm-py:async:dead"
LEGACY_GROUP = "workers"
_SOCKET_TIMEOUT_SECONDS = 15.0
_POLL_SECONDS = 0.05
# How many finished records one script of expire looks at, so that no run holds Redis up long.
_EXPIRE_BATCH = 500
# How often the move of an earlier version's keys is tried when they change under it, before
# it is left for the next use.
_MIGRATION_TRIES = 5


def record_key(call_id: str) -> str:
    """The hash that holds call ``call_id``'s record and request."""
    return f"{PREFIX}call:{call_id}"


# Shared by every script. Times are unix seconds by Redis's clock, as decimal strings to the
# microsecond; a record field set to false (Lua's nil from HGET) is absent.
_LIB = f"""
local P = '{PREFIX}'
local FINISHED = {{succeeded = true, failed = true, dead = true, cancelled = true}}

local function record(id) return P .. 'call:' .. id end

local function now()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', t[2])
end

local function next_number() return redis.call('INCR', P .. 'counter') end

-- ARGV[first] is how many (field, value) pairs follow; each later argument names a field to remove.
local function update(key, first)
  local set = tonumber(ARGV[first])
  for i = first + 1, first + 2 * set, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
  for i = first + 1 + 2 * set, #ARGV do redis.call('HDEL', key, ARGV[i]) end
end

-- The state, its index, and the finished index; ``at`` is the finish time of a finished state.
local function set_state(id, state, at)
  local key = record(id)
  local old, seq = unpack(redis.call('HMGET', key, 'state', 'seq'))
  if old then redis.call('ZREM', P .. 'state:' .. old, id) end
  redis.call('ZADD', P .. 'state:' .. state, seq, id)
  redis.call('HSET', key, 'state', state)
  if FINISHED[state] then
    redis.call('HSET', key, 'finished_at', at)
    redis.call('ZADD', P .. 'finished', at, id)
  else
    redis.call('ZREM', P .. 'finished', id)
  end
end

-- A function that comes to have calls ready joins the heads by the ticket of its oldest; one
-- that has them already keeps its place, which only serving it changes (``_TAKE``).
local function refresh_head(ref)
  local first = redis.call('ZRANGE', P .. 'ready:' .. ref, 0, 0, 'WITHSCORES')
  if first[1] then
    redis.call('ZADD', P .. 'heads', 'NX', first[2], ref)
  else
    redis.call('ZREM', P .. 'heads', ref)
  end
end

local function ready_add(id, ref)
  redis.call('ZADD', P .. 'ready:' .. ref, next_number(), id)
  refresh_head(ref)
end

local function ready_remove(id, ref)
  if redis.call('ZREM', P .. 'ready:' .. ref, id) == 1 then refresh_head(ref) end
end

local function enqueue(id, ref, handouts)
  redis.call('HSET', record(id), 'entry', next_number(), 'handouts', handouts)
  ready_add(id, ref)
end

local function unhold(id, ref)
  redis.call('ZREM', P .. 'held', id)
  redis.call('HDEL', record(id), 'consumer')
  if redis.call('HINCRBY', P .. 'inflight', ref, -1) <= 0 then redis.call('HDEL', P .. 'inflight', ref) end
end

local function leave_queue(id)
  local key = record(id)
  local ref, consumer = unpack(redis.call('HMGET', key, 'reference', 'consumer'))
  ready_remove(id, ref)
  redis.call('ZREM', P .. 'delayed', id)
  if consumer then unhold(id, ref) end
  redis.call('HDEL', key, 'entry', 'handouts', 'cancelled')
end

-- A delivery is current while its call is held under the entry and attempt it was handed out with.
local function current(id, entry, attempt)
  local e, n, consumer = unpack(redis.call('HMGET', record(id), 'entry', 'handouts', 'consumer'))
  return e == entry and n == attempt and consumer ~= false
end

-- Held by ``consumer`` since ``t``, RUNNING unless cancelled: {{id, entry, attempt, cancelled, payload}}.
local function hold(id, consumer, t)
  local key = record(id)
  local attempt = redis.call('HINCRBY', key, 'handouts', 1)
  redis.call('HSET', key, 'consumer', consumer)
  redis.call('ZADD', P .. 'held', t, id)
  local entry, cancelled, payload = unpack(redis.call('HMGET', key, 'entry', 'cancelled', 'payload'))
  if not cancelled then
    redis.call('HSET', key, 'attempts', attempt)
    redis.call('HSETNX', key, 'started_at', t)
    set_state(id, 'running')
  end
  return {{id, entry, attempt, cancelled and 1 or 0, payload}}
end
"""

# ARGV: id, name, namespace, reference, max_inflight, has_callback, accepted_at, payload, state,
# attempts, then fields (see update). Returns 0, storing nothing, when the id is taken.
_INSERT = """
local id, state = ARGV[1], ARGV[9]
local key = record(id)
if redis.call('EXISTS', key) == 1 then return 0 end
local seq = next_number()
redis.call('HSET', key, 'call_id', id, 'function', ARGV[2], 'namespace', ARGV[3], 'reference', ARGV[4],
  'max_inflight', ARGV[5], 'has_callback', ARGV[6], 'accepted_at', ARGV[7], 'payload', ARGV[8],
  'attempts', ARGV[10], 'history', '[]', 'seq', seq)
update(key, 11)
for _, index in ipairs({'all', 'function:' .. ARGV[2], 'namespace:' .. ARGV[3]}) do
  redis.call('ZADD', P .. index, seq, id)
end
set_state(id, state, now())
if state ~= 'dead' then enqueue(id, ARGV[4], ARGV[10]) end
return 1
"""

# ARGV: consumer, count. Due delayed calls become ready first (in the order they came due); then
# each round hands out the head of each function not at its cap, the least recently served first.
_TAKE = """
local consumer, count, t = ARGV[1], tonumber(ARGV[2]), now()
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', t)) do
  redis.call('ZREM', P .. 'delayed', id)
  ready_add(id, redis.call('HGET', record(id), 'reference'))
end
local taken = {}
while #taken < count do
  local served = false
  for _, ref in ipairs(redis.call('ZRANGE', P .. 'heads', 0, -1)) do
    if #taken == count then break end
    local id = redis.call('ZRANGE', P .. 'ready:' .. ref, 0, 0)[1]
    local cap = tonumber(redis.call('HGET', record(id), 'max_inflight'))
    if cap == 0 or (tonumber(redis.call('HGET', P .. 'inflight', ref)) or 0) < cap then
      ready_remove(id, ref)
      -- Served: to the back of the heads, so that the next take, even of one call, serves
      -- every other function first.
      redis.call('ZADD', P .. 'heads', 'XX', next_number(), ref)
      redis.call('HINCRBY', P .. 'inflight', ref, 1)
      table.insert(taken, hold(id, consumer, t))
      served = true
    end
  end
  if not served then break end
end
return taken
"""

# ARGV: consumer, idle seconds, count.
_RECLAIM = """
local t = now()
local idle_since = string.format('%.6f', tonumber(t) - tonumber(ARGV[2]))
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'held', '-inf', idle_since, 'LIMIT', 0, ARGV[3])) do
  table.insert(taken, hold(id, ARGV[1], t))
end
return taken
"""

# ARGV: id, entry, attempt, state, then fields. A cancelled delivery's record is final already.
_FINISH = """
local id, state = ARGV[1], ARGV[4]
if not current(id, ARGV[2], ARGV[3]) then return 0 end
leave_queue(id)
update(record(id), 5)
if state ~= 'cancelled' then set_state(id, state, now()) end
return 1
"""

# ARGV: id, entry, attempt, delay seconds, then fields (of a running call: not of a cancelled one).
_RELEASE = """
local id = ARGV[1]
if not current(id, ARGV[2], ARGV[3]) then return 0 end
local key = record(id)
unhold(id, redis.call('HGET', key, 'reference'))
redis.call('ZADD', P .. 'delayed', string.format('%.6f', tonumber(now()) + tonumber(ARGV[4])), id)
if redis.call('HGET', key, 'state') == 'running' then
  set_state(id, 'retrying')
  update(key, 5)
end
return 1
"""

# ARGV: id, entry, attempt, reason.
_BURY = """
local id = ARGV[1]
if not current(id, ARGV[2], ARGV[3]) then return 0 end
leave_queue(id)
redis.call('HSET', record(id), 'error', ARGV[4])
set_state(id, 'dead', now())
return 1
"""

# ARGV: id. Returns 1 when the call was waiting and is cancelled now.
_CANCEL = """
local id = ARGV[1]
local key = record(id)
local state, ref, callback = unpack(redis.call('HMGET', key, 'state', 'reference', 'has_callback'))
if state ~= 'queued' and state ~= 'retrying' then return 0 end
if callback == '1' then
  -- Handed out once more, now, so that the callback hears of it.
  ready_remove(id, ref)
  redis.call('ZREM', P .. 'delayed', id)
  redis.call('HSET', key, 'cancelled', 1)
  ready_add(id, ref)
else
  leave_queue(id)
end
set_state(id, 'cancelled', now())
return 1
"""

# ARGV: id. Returns 1 when the call was finished and is queued again. The run is written as JSON
# from the stored strings, which are JSON numbers already: no precision is lost on the way.
_REPLAY = """
local id = ARGV[1]
local key = record(id)
local state, attempts, started, finished, status, err, history, ref = unpack(redis.call('HMGET', key,
  'state', 'attempts', 'started_at', 'finished_at', 'status_code', 'error', 'history', 'reference'))
if not FINISHED[state] then return 0 end
local run = string.format('{"state":%s,"attempts":%s,"started_at":%s,"finished_at":%s,"status_code":%s,"error":%s}',
  cjson.encode(state), attempts, started or 'null', finished or 'null', status or 'null',
  err and cjson.encode(err) or 'null')
if history == '[]' then history = '[' .. run .. ']' else history = string.sub(history, 1, -2) .. ',' .. run .. ']' end
-- A cancelled call whose callback was not told yet is still in the queue: it runs now instead.
leave_queue(id)
redis.call('HDEL', key, 'started_at', 'finished_at', 'status_code', 'duration_seconds', 'error',
  'callback_delivered', 'result_status', 'result_headers', 'result_body', 'result_truncated')
redis.call('HSET', key, 'attempts', 0, 'history', history)
set_state(id, 'queued')
enqueue(id, ref, 0)
return 1
"""

# ARGV: finished before, offset, count. Returns {removed, skipped}: a cancelled call whose
# callback is still to be told is skipped, and stays.
_EXPIRE = """
local removed, skipped = 0, 0
local ids = redis.call('ZRANGEBYSCORE', P .. 'finished', '-inf', '(' .. ARGV[1], 'LIMIT', ARGV[2], ARGV[3])
for _, id in ipairs(ids) do
  local key = record(id)
  local name, namespace, state, entry = unpack(redis.call('HMGET', key, 'function', 'namespace', 'state', 'entry'))
  if entry then
    skipped = skipped + 1
  else
    for _, index in ipairs({'all', 'function:' .. name, 'namespace:' .. namespace, 'state:' .. state, 'finished'}) do
      redis.call('ZREM', P .. index, id)
    end
    redis.call('DEL', key)
    removed = removed + 1
  end
end
return {removed, skipped}
"""

_SCRIPTS = {
    "insert": _INSERT,
    "take": _TAKE,
    "reclaim": _RECLAIM,
    "finish": _FINISH,
    "release": _RELEASE,
    "bury": _BURY,
    "cancel": _CANCEL,
    "replay": _REPLAY,
    "expire": _EXPIRE,
}

# A record's fields as CallRecord has them, each with how its stored bytes are read.
_RECORD = {
    "call_id": bytes.decode,
    "function": bytes.decode,
    "namespace": bytes.decode,
    "state": bytes.decode,
    "attempts": int,
    "accepted_at": float,
    "started_at": float,
    "finished_at": float,
    "status_code": int,
    "duration_seconds": float,
    "error": bytes.decode,
    "has_callback": lambda raw: raw == b"1",
    "callback_delivered": lambda raw: raw == b"1",
    "history": lambda raw: tuple(Run(**run) for run in json.loads(raw)),
}
_RESULT = ("result_status", "result_headers", "result_body", "result_truncated")


class RedisQueue:
    """The Queue protocol (``app.queue.Queue``) on Redis; see the module docstring."""

    def __init__(self, url: str):
        """A queue on the Redis server ``url`` names; it connects on first use."""
        self._redis = redis.Redis.from_url(url, socket_timeout=_SOCKET_TIMEOUT_SECONDS, socket_connect_timeout=5.0)
        # Named by host and port only: the URL may hold a password.
        options = self._redis.connection_pool.connection_kwargs
        self._where = f"{options.get('host')}:{options.get('port')}"
        self._scripts = {name: self._redis.register_script(_LIB + body) for name, body in _SCRIPTS.items()}
        self._prepared = False

    def put(self, call: AsyncCall) -> bool:
        args = _insert_args(call, call.to_bytes(), QUEUED, 0, None)
        return bool(self._call(lambda: self._scripts["insert"](args=args)))

    def take(self, consumer: str, count: int, block_seconds: float) -> list[Delivery]:
        deadline = time.monotonic() + block_seconds
        while True:
            deliveries = self._deliveries(self._call(lambda: self._scripts["take"](args=[consumer, count])))
            remaining = deadline - time.monotonic()
            if deliveries or remaining <= 0:
                return deliveries
            time.sleep(min(_POLL_SECONDS, remaining))

    def reclaim(self, consumer: str, idle_seconds: float, count: int) -> list[Delivery]:
        return self._deliveries(self._call(lambda: self._scripts["reclaim"](args=[consumer, idle_seconds, count])))

    def finish(self, delivery: Delivery, outcome: Outcome) -> None:
        if outcome.state == CANCELLED:
            # Cancelled while it waited: its record is final, only the callback is news.
            fields = {"callback_delivered": outcome.callback_delivered}
        else:
            result = outcome.result
            fields = {
                "status_code": outcome.status_code,
                "duration_seconds": outcome.duration_seconds,
                "error": outcome.error,
                "callback_delivered": outcome.callback_delivered,
                "result_status": result and result.status_code,
                "result_headers": result and json.dumps(result.headers),
                "result_body": result and result.body,
                "result_truncated": result and result.truncated,
            }
        args = [*_delivery_args(delivery), outcome.state, *_changes(fields)]
        self._call(lambda: self._scripts["finish"](args=args))

    def release(self, delivery: Delivery, delay_seconds: float, status_code: int | None, error: str | None) -> None:
        args = [*_delivery_args(delivery), delay_seconds, *_changes({"status_code": status_code, "error": error})]
        self._call(lambda: self._scripts["release"](args=args))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self._call(lambda: self._scripts["bury"](args=[*_delivery_args(delivery), reason]))

    def cancel(self, call_id: str) -> tuple[CallRecord | None, bool]:
        return self._change("cancel", call_id)

    def replay(self, call_id: str) -> tuple[CallRecord | None, bool]:
        return self._change("replay", call_id)

    def get(self, call_id: str) -> CallRecord | None:
        values = self._call(lambda: self._redis.hmget(record_key(call_id), *_RECORD, *_RESULT))
        return _record(values)

    def calls(self, where: CallFilter, limit: int, after: str = "") -> tuple[list[CallRecord], str]:
        if after and not after.isdigit():
            raise ValueError(f"{after!r} is not a cursor this queue gave")
        # The narrowest index the filter names is read newest first; the other fields are checked.
        if where.function:
            index = f"{PREFIX}function:{where.function}"
        elif where.namespace:
            index = f"{PREFIX}namespace:{where.namespace}"
        elif where.state:
            index = f"{PREFIX}state:{where.state}"
        else:
            index = f"{PREFIX}all"
        wanted = {name: value for name, value in vars(where).items() if value}
        found: list[tuple[int, CallRecord]] = []
        below = f"({after}" if after else "+inf"
        while len(found) <= limit:
            batch = self._call(lambda: self._read_batch(index, below, limit + 1))
            for seq, record in batch:
                if record is not None and all(getattr(record, name) == value for name, value in wanted.items()):
                    found.append((seq, record))
            if len(batch) < limit + 1:
                break
            below = f"({batch[-1][0]}"
        page = found[:limit]
        cursor = str(page[-1][0]) if len(found) > limit else ""
        return [record for _, record in page], cursor

    def expire(self, finished_before: float) -> int:
        removed = skipped = 0
        while True:
            args = [finished_before, skipped, _EXPIRE_BATCH]
            gone, kept = self._call(lambda: self._scripts["expire"](args=args))
            removed, skipped = removed + gone, skipped + kept
            if gone + kept < _EXPIRE_BATCH:
                return removed

    def counts(self) -> dict[str, int]:
        def counts() -> list[int]:
            # One transaction, so a call changing state is counted once.
            with self._redis.pipeline(transaction=True) as pipe:
                for state in STATES:
                    pipe.zcard(f"{PREFIX}state:{state}")
                return pipe.execute()

        return dict(zip(STATES, self._call(counts)))

    def close(self) -> None:
        self._redis.close()

    def _deliveries(self, claimed: list[list]) -> list[Delivery]:
        """The deliveries of just-claimed calls, one at a time: one that cannot be decoded is made
        DEAD, and the others are handed out."""
        deliveries = []
        for call_id, entry, attempt, cancelled, payload in claimed:
            try:
                call = AsyncCall.from_bytes(payload)
            except ValueError as exc:
                args = [call_id, entry, attempt, f"the stored call cannot be decoded: {exc}"]
                self._call(lambda: self._scripts["bury"](args=args))
                continue
            deliveries.append(Delivery(entry.decode(), call, attempt, bool(cancelled)))
        return deliveries

    def _change(self, script: str, call_id: str) -> tuple[CallRecord | None, bool]:
        """Run the ``cancel`` or ``replay`` script on the call and read its record, in one transaction."""
        def change() -> list:
            with self._redis.pipeline(transaction=True) as pipe:
                self._scripts[script](args=[call_id], client=pipe)
                pipe.hmget(record_key(call_id), *_RECORD, *_RESULT)
                return pipe.execute()

        changed, values = self._call(change)
        return _record(values), bool(changed)

    def _read_batch(self, index: str, below: str, count: int) -> list[tuple[int, CallRecord | None]]:
        """Up to ``count`` (seq, record) of ``index`` below the score ``below``, newest first,
        without results; None for a record removed since."""
        ids = self._redis.zrevrangebyscore(index, below, "-inf", start=0, num=count, withscores=True)
        with self._redis.pipeline(transaction=False) as pipe:
            for call_id, _ in ids:
                pipe.hmget(record_key(call_id.decode()), *_RECORD)
            return [(int(seq), _record(values)) for (_, seq), values in zip(ids, pipe.execute())]

    def _call(self, operation: Callable[[], T]) -> T:
        """``operation()``, after the first use's preparation.

        Raises BackendUnavailable for every Redis failure.
        """
        try:
            if not self._prepared:
                self._prepare()
            return operation()
        except redis.RedisError as exc:
            raise BackendUnavailable(f"The async queue on Redis at {self._where} is unavailable: {exc}.") from None

    def _prepare(self) -> None:
        """Move an earlier version's keys in, and warn when Redis keeps no append-only file."""
        if not self._migrate():
            return  # tried again on the next use
        try:
            aof_enabled = self._redis.info("persistence").get("aof_enabled")
        except redis.ResponseError:
            aof_enabled = None  # this user may not run INFO; then nothing is known
        if aof_enabled == 0:
            log.warning("Redis at %s has no append-only file: stored async calls are lost if it stops", self._where)
        self._prepared = True

    def _migrate(self) -> bool:
        """Move an earlier version's calls and dead letters into records and delete its keys, in
        one transaction; False when another process changed those keys meanwhile."""
        legacy = (LEGACY_STREAM, LEGACY_DELAYED, LEGACY_DEAD)
        for _ in range(_MIGRATION_TRIES):
            with self._redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*legacy)
                    if not pipe.exists(*legacy):
                        return True
                    entries = pipe.xrange(LEGACY_STREAM)
                    delivered = _times_delivered(pipe, len(entries))
                    delayed = pipe.zrange(LEGACY_DELAYED, 0, -1)
                    dead = pipe.xrange(LEGACY_DEAD)
                    pipe.multi()
                    for entry_id, fields in entries:
                        # A call's attempts were those of its entry's writer plus the group's deliveries.
                        attempts = int(fields.get(b"attempts", 0)) + delivered.get(entry_id, 0)
                        self._insert_legacy(pipe, f"legacy-{entry_id.decode()}", fields.get(b"call", b""), QUEUED,
                                            attempts, None)
                    for member in delayed:
                        entry_id, attempts, payload = member.split(b" ", 2)
                        self._insert_legacy(pipe, f"legacy-{entry_id.decode()}", payload, QUEUED, int(attempts), None)
                    for entry_id, fields in dead:
                        attempts = int(fields.get(b"attempts", 0)) + int(fields.get(b"delivered", 0))
                        self._insert_legacy(pipe, f"legacy-dead-{entry_id.decode()}", fields.get(b"call", b""), DEAD,
                                            attempts, fields.get(b"reason", b"").decode(errors="replace"))
                    pipe.delete(*legacy)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue
        return False

    def _insert_legacy(self, pipe: redis.client.Pipeline, fallback_id: str, payload: bytes, state: str,
                       attempts: int, error: str | None) -> None:
        try:
            call = AsyncCall.from_bytes(payload)
        except ValueError as exc:
            call = AsyncCall(fallback_id, "", "", "POST", "", "", [], b"", None, time.time())
            state, error = DEAD, f"the stored call cannot be decoded: {exc}"
        self._scripts["insert"](args=_insert_args(call, payload, state, attempts, error), client=pipe)


def _times_delivered(pipe: redis.client.Pipeline, entries: int) -> dict[bytes, int]:
    """How often the earlier version's group handed out each of its pending entries."""
    if not entries:
        return {}
    try:
        pending = pipe.xpending_range(LEGACY_STREAM, LEGACY_GROUP, "-", "+", entries)
    except redis.ResponseError:
        return {}  # no group: nothing was handed out
    return {entry["message_id"]: entry["times_delivered"] for entry in pending}


def _insert_args(call: AsyncCall, payload: bytes, state: str, attempts: int, error: str | None) -> list:
    """The insert script's arguments: ``call`` stored as ``payload`` in ``state`` (in the queue
    unless DEAD), with ``attempts`` hand-outs so far."""
    return [call.call_id, call.name, call.namespace, call.function, call.max_inflight, int(bool(call.callback_url)),
            call.enqueued_at, payload, state, attempts, *_changes({"error": error})]


def _delivery_args(delivery: Delivery) -> list:
    return [delivery.call.call_id, delivery.message_id, delivery.attempt]


def _changes(fields: dict[str, object]) -> list:
    """Script arguments (see ``update`` in ``_LIB``) that set each field to its value, and remove
    those whose value is None; a bool is stored as 1 or 0."""
    kept = {name: int(value) if isinstance(value, bool) else value for name, value in fields.items()
            if value is not None}
    removed = [name for name, value in fields.items() if value is None]
    return [len(kept), *[item for pair in kept.items() for item in pair], *removed]


def _record(values: list[bytes | None]) -> CallRecord | None:
    """The record of HMGET's answer for ``_RECORD`` (and ``_RESULT``, when asked), None when the
    hash is missing."""
    if values[0] is None:
        return None
    fields = {name: None if raw is None else read(raw) for (name, read), raw in zip(_RECORD.items(), values)}
    result = None
    if len(values) > len(_RECORD) and values[len(_RECORD)] is not None:
        status, headers, body, truncated = values[len(_RECORD):]
        result = CallResult(int(status), [tuple(pair) for pair in json.loads(headers)], body, truncated == b"1")
    return CallRecord(**fields, result=result)
