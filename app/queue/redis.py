"""The async queue on Redis Streams, for gateways on several nodes sharing one queue.

Keys (``faas-swarm-py:async``, ``faas-swarm-py:async:delayed`` and ``faas-swarm-py:async:dead``):

- The stream holds one entry per stored call, fields ``call`` (``AsyncCall.to_bytes``) and
  ``attempts`` (hand-outs before this entry was written). It is never trimmed: an entry is deleted
  only by ack, so the stream holds exactly the calls not yet done.
- Its consumer group ``workers`` hands out each entry once (``XREADGROUP >``) and keeps it in the
  group's pending list, with a delivery count, until the ack (``XACK`` and ``XDEL`` in one
  transaction). ``XAUTOCLAIM`` takes over entries pending longer than the idle time. A delivery's
  attempt is the entry's ``attempts`` plus its delivery count.
- Release moves the call, in one script, from the stream into the sorted set, scored by the time
  (Redis's clock, in milliseconds) it may run again; ``take`` moves due calls back into the stream
  as new entries before it reads. Scripts run atomically, so a call is always in exactly one place.
- The dead letters are a second stream, never read by consumers: a held entry is moved there, in
  one script, with its fields as stored plus ``entry`` (its old id), ``reason`` and ``delivered``
  (its delivery count), when it cannot be decoded or the worker gives up on it.

Durability is Redis's: put returns when Redis has answered ``XADD``, and the call survives a Redis
crash only when the server runs with ``appendonly yes`` and ``appendfsync always`` (``everysec``
may lose the last second). A warning is logged when the append-only file is off.

Every Redis failure (unreachable, timeout, out of memory, a failed disk write) raises
BackendUnavailable.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

import redis

from app.errors import BackendUnavailable
from app.queue import AsyncCall, Delivery

log = logging.getLogger(__name__)
T = TypeVar("T")

STREAM = "faas-swarm-py:async"
DELAYED = "faas-swarm-py:async:delayed"
DEAD = "faas-swarm-py:async:dead"
GROUP = "workers"
# A blocking read waits at most this long per round trip, well below the socket timeout.
_BLOCK_SLICE_SECONDS = 5.0
_SOCKET_TIMEOUT_SECONDS = 15.0

# KEYS: stream, delayed. ARGV: group, entry id, attempt, delay in ms. Returns 1 when released.
# A delayed member is "<old entry id> <attempts> <call>": the old id keeps members unique.
_RELEASE = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #pending == 0 or #entry == 0 then return 0 end
local fields = {}
for i = 1, #entry[1][2], 2 do fields[entry[1][2][i]] = entry[1][2][i + 1] end
if tonumber(fields.attempts) + pending[1][4] ~= tonumber(ARGV[3]) then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local now = redis.call('TIME')
local due = now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], string.format('%d', due), ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. fields.call)
return 1
"""

# KEYS: stream, dead. ARGV: group, entry id, attempt or "" for any, reason. Returns 1 when moved.
# Only a held entry is moved, and with an attempt only the delivery that is current.
_BURY = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #pending == 0 or #entry == 0 then return 0 end
local fields = entry[1][2]
if ARGV[3] ~= '' then
  local attempts = -1
  for i = 1, #fields, 2 do
    if fields[i] == 'attempts' then attempts = tonumber(fields[i + 1]) or -1 end
  end
  if attempts + pending[1][4] ~= tonumber(ARGV[3]) then return 0 end
end
local dead = {'entry', ARGV[2], 'reason', ARGV[4], 'delivered', pending[1][4]}
for i = 1, #fields do table.insert(dead, fields[i]) end
redis.call('XADD', KEYS[2], '*', unpack(dead))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""

# KEYS: stream, delayed. ARGV: most calls to move. Moves due calls into the stream; returns the
# milliseconds until the next delayed call is due, or -1 when there is none.
_PROMOTE = """
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now), 'LIMIT', 0, ARGV[1])
for _, member in ipairs(due) do
  local first = string.find(member, ' ', 1, true)
  local second = string.find(member, ' ', first + 1, true)
  local attempts = string.sub(member, first + 1, second - 1)
  redis.call('XADD', KEYS[1], '*', 'attempts', attempts, 'call', string.sub(member, second + 1))
  redis.call('ZREM', KEYS[2], member)
end
local next = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #next == 0 then return -1 end
return math.max(0, tonumber(next[2]) - now)
"""

# KEYS: stream. ARGV: group, consumer, min idle ms, count. Returns {id, fields, delivery count}
# per claimed entry; the counts are read in the same script, so they are the claim's own.
_RECLAIM = """
local cursor, claimed = '0-0', {}
repeat
  local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor, 'COUNT', ARGV[4] - #claimed)
  cursor = reply[1]
  for _, entry in ipairs(reply[2]) do
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    table.insert(claimed, {entry[1], entry[2], pending[1][4]})
  end
until cursor == '0-0' or #claimed >= tonumber(ARGV[4])
return claimed
"""


class RedisQueue:
    """The Queue protocol (``app.queue.Queue``) on Redis Streams; see the module docstring."""

    def __init__(self, url: str):
        """A queue on the Redis server ``url`` names; it connects on first use."""
        self._redis = redis.Redis.from_url(url, socket_timeout=_SOCKET_TIMEOUT_SECONDS, socket_connect_timeout=5.0)
        # Named by host and port only: the URL may hold a password.
        options = self._redis.connection_pool.connection_kwargs
        self._where = f"{options.get('host')}:{options.get('port')}"
        self._release = self._redis.register_script(_RELEASE)
        self._promote = self._redis.register_script(_PROMOTE)
        self._reclaim = self._redis.register_script(_RECLAIM)
        self._bury = self._redis.register_script(_BURY)
        self._group_ready = False

    def put(self, call: AsyncCall) -> None:
        payload = call.to_bytes()
        self._call(lambda: self._redis.xadd(STREAM, {"attempts": 0, "call": payload}))

    def take(self, consumer: str, count: int, block_seconds: float) -> list[Delivery]:
        deadline = time.monotonic() + block_seconds
        while True:
            until_due = self._call(lambda: self._promote(keys=[STREAM, DELAYED], args=[count]))
            wait = min(deadline - time.monotonic(), _BLOCK_SLICE_SECONDS)
            if until_due >= 0:
                wait = min(wait, until_due / 1000)
            # BLOCK 0 would wait forever, so no wait at all is no BLOCK.
            block = max(1, int(wait * 1000)) if wait > 0 else None
            reply = self._call(
                lambda: self._redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count, block=block)
            )
            # A new entry's delivery count is 1.
            deliveries = self._decode([(entry_id, fields, 1) for _, entries in reply for entry_id, fields in entries])
            if deliveries or time.monotonic() >= deadline:
                return deliveries

    def reclaim(self, consumer: str, idle_seconds: float, count: int) -> list[Delivery]:
        claimed = self._call(
            lambda: self._reclaim(keys=[STREAM], args=[GROUP, consumer, int(idle_seconds * 1000), count])
        )
        return self._decode([(entry_id, dict(zip(flat[::2], flat[1::2])), times) for entry_id, flat, times in claimed])

    def ack(self, delivery: Delivery) -> None:
        def ack() -> None:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(STREAM, GROUP, delivery.message_id)
                pipe.xdel(STREAM, delivery.message_id)
                pipe.execute()

        self._call(ack)

    def release(self, delivery: Delivery, delay_seconds: float) -> None:
        args = [GROUP, delivery.message_id, delivery.attempt, int(delay_seconds * 1000)]
        self._call(lambda: self._release(keys=[STREAM, DELAYED], args=args))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        args = [GROUP, delivery.message_id, delivery.attempt, reason]
        self._call(lambda: self._bury(keys=[STREAM, DEAD], args=args))

    def depth(self) -> int:
        def depth() -> int:
            # One transaction, so a call moving between the stream and the set is counted once.
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.xlen(STREAM)
                pipe.zcard(DELAYED)
                return sum(pipe.execute())

        return self._call(depth)

    def dead_letters(self) -> int:
        return self._call(lambda: self._redis.xlen(DEAD))

    def close(self) -> None:
        self._redis.close()

    def _decode(self, entries: list[tuple[bytes, dict[bytes, bytes], int]]) -> list[Delivery]:
        """The deliveries of just-claimed ``(id, fields, delivery count)`` entries, one entry at a
        time: one that cannot be decoded goes to the dead letters, and the others are handed out."""
        deliveries = []
        for entry_id, fields, times in entries:
            try:
                deliveries.append(_delivery(entry_id, fields, times))
            except ValueError as exc:
                args = [GROUP, entry_id, "", str(exc)]
                self._call(lambda: self._bury(keys=[STREAM, DEAD], args=args))
        return deliveries

    def _call(self, operation: Callable[[], T]) -> T:
        """``operation()``, creating the consumer group first when it is missing.

        Raises BackendUnavailable for every Redis failure.
        """
        try:
            if not self._group_ready:
                self._create_group()
            try:
                return operation()
            except redis.ResponseError as exc:
                # A Redis that lost its data (no append-only file) lost the group with it.
                if "NOGROUP" not in str(exc):
                    raise
                self._create_group()
                return operation()
        except redis.RedisError as exc:
            raise BackendUnavailable(f"The async queue on Redis at {self._where} is unavailable: {exc}.") from None

    def _create_group(self) -> None:
        # From id 0, so calls put before the group existed are handed out too.
        try:
            self._redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        try:
            aof_enabled = self._redis.info("persistence").get("aof_enabled")
        except redis.ResponseError:
            aof_enabled = None  # this user may not run INFO; then nothing is known
        if aof_enabled == 0:
            log.warning("Redis at %s has no append-only file: stored async calls are lost if it stops", self._where)
        self._group_ready = True


def _delivery(entry_id: bytes, fields: dict[bytes, bytes], times_delivered: int) -> Delivery:
    """The delivery of a stream entry; raises ValueError when the entry is not one ``put`` or
    ``take`` wrote."""
    if b"attempts" not in fields or b"call" not in fields:
        raise ValueError(f"a stored async call lacks a field: it has {sorted(fields)}")
    attempt = int(fields[b"attempts"]) + times_delivered
    return Delivery(entry_id.decode(), AsyncCall.from_bytes(fields[b"call"]), attempt)
