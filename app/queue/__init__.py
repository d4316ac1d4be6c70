"""The durable queue behind /async-function: the stored call, its record, its delivery, and the
interface both backends keep.

The HTTP layer ``put``s a call and answers 202 only when ``put`` returned, so an accepted call is
stored, and with it the call's record (``CallRecord``): its state, attempts, times, last outcome
and result, which ``get`` and ``calls`` read. Every change of state happens in the same
transaction (SQLite) or script (Redis) as the queue operation that causes it, so a crash can
never leave a call both finished and queued, or lost:

    put ─> queued ─take─> running ─finish─> succeeded | failed
              ▲  │           │ release          (the callback got the outcome)
     cancel ◄─┘  │           ▼
    (cancelled)  └───── retrying ─take─> running ...
                             running past its attempts ─dead_letter─> dead

Workers ``take`` calls, invoke the function, post the callback and only then ``finish``: delivery
is at least once. A call taken by a worker that died stays stored, and another worker takes it
over with ``reclaim`` once it has been idle long enough. A call to retry later is given back with
``release`` and a delay, so the wait lives in the store: any worker may take it when it is due,
and a restart loses no retry. ``Delivery.attempt`` counts the hand-outs; a worker moves a call
past its attempts (one that keeps killing its workers, say) out with ``dead_letter``.

``take`` is fair: it hands out the oldest due call of each function in turn, so one function's
burst does not hold up another's calls, and never more of a function's calls at once, across
every consumer, than the ``max_inflight`` the call was stored with.

A waiting call can be ``cancel``led: it never runs; one with a callback URL is handed out once
more, as a cancelled delivery, so that its callback is told. A finished call (any state but
queued, running and retrying) can be put back with ``replay``: same id, attempts from zero, the
earlier run kept in its history. Records of finished calls are kept until ``expire`` removes
them, with the request they hold.

Nothing stored is lost: a stored call that cannot be decoded (damaged, or of a version that
cannot be read) is found DEAD by ``take`` or ``reclaim``, bytes as stored, and the rest of the
batch is handed out as usual. The dead letters are the records in state DEAD.

Two backends: ``sqlite`` (``app.queue.sqlite``, one file, no server, for one node) and ``redis``
(``app.queue.redis``, for gateways on several nodes). ``open_queue`` picks one by URL scheme.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from app.domain.names import split_reference
from app.domain.retries import RetryPolicy

# A call's states; see the module docstring for how one leads to another.
QUEUED, RUNNING, RETRYING = "queued", "running", "retrying"
SUCCEEDED, FAILED, DEAD, CANCELLED = "succeeded", "failed", "dead", "cancelled"
STATES = (QUEUED, RUNNING, RETRYING, SUCCEEDED, FAILED, DEAD, CANCELLED)
ACTIVE = frozenset({QUEUED, RUNNING, RETRYING})
# What cancel stops: calls not running at the moment.
WAITING = frozenset({QUEUED, RETRYING})
FINISHED = frozenset(STATES) - ACTIVE
# What a call id may be: it is a key in the store and a path segment of the API.
CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def valid_call_id(text: str) -> bool:
    return CALL_ID.fullmatch(text) is not None


@dataclass(frozen=True)
class AsyncCall:
    """One accepted async request, exactly as the worker will send it to the function.

    ``function`` is the canonical reference (``name``, or ``name.namespace`` outside the default
    namespace: calls stored before namespaces existed name default-namespace functions), and
    ``namespace`` the function's namespace; ``path`` is what followed the function's name (``""``
    or starting with ``/``); ``headers`` keep their order and repeats; ``enqueued_at`` is unix time.
    ``retry`` is the function's retry policy when it set one by label (None: the gateway's), and
    ``max_inflight`` its cap on async calls running at once (0: none), both as accepted.
    """

    call_id: str
    function: str
    namespace: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    callback_url: str | None
    enqueued_at: float
    retry: RetryPolicy | None = None
    max_inflight: int = 0

    @property
    def name(self) -> str:
        """The function's bare name, as its records name it beside ``namespace`` (``""`` for a
        call whose stored bytes could not be decoded)."""
        return split_reference(self.function)[0] if self.function else ""

    def to_bytes(self) -> bytes:
        """One JSON line holding every field but the body, then the body's raw bytes."""
        header = {
            "call_id": self.call_id,
            "function": self.function,
            "namespace": self.namespace,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "callback_url": self.callback_url,
            "enqueued_at": self.enqueued_at,
            "retry": self.retry.to_json() if self.retry else None,
            "max_inflight": self.max_inflight,
        }
        # json.dumps escapes every newline inside strings, so the first b"\n" ends the header.
        return json.dumps(header, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> "AsyncCall":
        """The call ``to_bytes`` encoded (by this version or an earlier one, which had no
        ``retry`` nor ``max_inflight``); raises ValueError for anything else."""
        if not isinstance(data, bytes):
            raise ValueError(f"a stored async call is {type(data).__name__}, not bytes")
        header, newline, body = data.partition(b"\n")
        if not newline:
            raise ValueError("a stored async call has no header line")
        try:
            values = json.loads(header)
            values["headers"] = [(name, value) for name, value in values["headers"]]
            retry = values.pop("retry", None)
            values["retry"] = RetryPolicy.from_json(retry) if retry is not None else None
            return cls(body=body, **values)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise ValueError(f"a stored async call has a malformed header: {exc}") from None


@dataclass(frozen=True)
class CallResult:
    """What the function answered, as kept: the body cut to the gateway's limit, ``truncated`` then."""

    status_code: int
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool


@dataclass(frozen=True)
class Run:
    """One earlier run of a replayed call, as its record said when it was put back."""

    state: str
    attempts: int
    started_at: float | None
    finished_at: float | None
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class CallRecord:
    """What became of a call: times are unix seconds, None until they happen;
    ``callback_delivered`` is None for a call without a callback URL, or until its callback was
    tried; ``status_code``, ``duration_seconds`` and ``error`` are the last try's; ``result`` is
    the final answer, once there is one."""

    call_id: str
    function: str
    namespace: str
    state: str
    attempts: int
    accepted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    status_code: int | None = None
    duration_seconds: float | None = None
    error: str | None = None
    has_callback: bool = False
    callback_delivered: bool | None = None
    result: CallResult | None = None
    history: tuple[Run, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Delivery:
    """A call handed to a consumer: ``message_id`` is the backend's id, ``attempt`` is 1 for the
    first hand-out and one more for each later one (reclaim, or take after release).
    ``cancelled`` is a call cancelled while it waited, handed out only for its callback to be
    told: it must not run."""

    message_id: str
    call: AsyncCall
    attempt: int
    cancelled: bool = False


@dataclass(frozen=True)
class Outcome:
    """How a delivery ended, for ``finish``: ``state`` is SUCCEEDED, FAILED or CANCELLED (for a
    cancelled delivery, whose callback was told); ``callback_delivered`` None when there was no
    callback to send."""

    state: str
    status_code: int | None
    duration_seconds: float | None
    error: str | None
    result: CallResult | None
    callback_delivered: bool | None


@dataclass(frozen=True)
class CallFilter:
    """Which records ``calls`` lists; an empty field matches every record."""

    function: str = ""
    namespace: str = ""
    state: str = ""


class Queue(Protocol):
    """A durable, at-least-once queue of AsyncCalls and their records, shared by every gateway
    process.

    Every method raises ``app.errors.BackendUnavailable`` when the store cannot be reached or
    cannot write; nothing is lost then, the caller retries later or refuses the request.
    """

    def put(self, call: AsyncCall) -> bool:
        """Store ``call``, QUEUED; returns True only once it is durably stored, False (storing
        nothing) when a call with its id is stored already."""

    def take(self, consumer: str, count: int, block_seconds: float) -> list[Delivery]:
        """Up to ``count`` due calls no consumer holds, now held by ``consumer`` and RUNNING
        (cancelled ones stay CANCELLED): fairly across functions, within each call's
        ``max_inflight``. Waits up to ``block_seconds`` for the first one and returns ``[]`` when
        none came. A call that cannot be decoded is made DEAD instead."""

    def reclaim(self, consumer: str, idle_seconds: float, count: int) -> list[Delivery]:
        """Up to ``count`` calls held by any consumer (this one included) for at least
        ``idle_seconds`` without a finish or release, now held by ``consumer``. A call that cannot
        be decoded is made DEAD instead of handed out."""

    def finish(self, delivery: Delivery, outcome: Outcome) -> None:
        """Take the call out of the queue for good and record ``outcome``: it was invoked (or,
        cancelled, not) and its callback sent. Does nothing when the delivery is stale (finished,
        or reclaimed since)."""

    def release(self, delivery: Delivery, delay_seconds: float, status_code: int | None, error: str | None) -> None:
        """Give the call back, RETRYING with its last try's status and error, so that ``take``
        hands it out again after ``delay_seconds``. Does nothing when the delivery is stale: its
        new holder decides."""

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Take the call out of the queue, DEAD with ``reason``, where no consumer gets it
        again. Does nothing when the delivery is stale."""

    def cancel(self, call_id: str) -> tuple[CallRecord | None, bool]:
        """Cancel the call if it waits (QUEUED or RETRYING): the record afterwards (None for an
        unknown id), and whether this cancel changed it."""

    def replay(self, call_id: str) -> tuple[CallRecord | None, bool]:
        """Put a finished call back, QUEUED with no attempts, its last run added to its history:
        the record afterwards (None for an unknown id), and whether this replay changed it
        (False for a call still queued, running or retrying)."""

    def get(self, call_id: str) -> CallRecord | None:
        """The record of call ``call_id``, None when none is kept."""

    def calls(self, where: CallFilter, limit: int, after: str = "") -> tuple[list[CallRecord], str]:
        """Up to ``limit`` records matching ``where``, newest accepted first, from after the
        cursor ``after`` (``""`` for the newest); and the cursor of the next page, ``""`` when
        there is none. Records are listed without their ``result``. Raises ValueError for a
        cursor this backend never gave."""

    def expire(self, finished_before: float) -> int:
        """Remove the records, and the requests they hold, of calls finished before that unix
        time; returns how many."""

    def counts(self) -> dict[str, int]:
        """How many records are kept in each state, every state a key."""

    def close(self) -> None:
        """Release the connection; the queue is not used afterwards."""


def open_queue(url: str) -> Queue:
    """The queue a URL names.

    ``sqlite:///relative/file.db`` or ``sqlite:////absolute/file.db`` (SQLAlchemy's spelling) is
    the embedded SQLite queue; ``redis://[:password@]host:port/db`` or ``rediss://...`` is the
    Redis one. Raises ValueError naming the scheme for any other URL, BackendUnavailable when a
    SQLite file cannot be opened.
    """
    parts = urlsplit(url)
    # The backends are imported here: they import this module, and only the Redis one needs
    # the redis package installed.
    if parts.scheme == "sqlite":
        path = parts.path[1:]
        if parts.netloc or not path:
            raise ValueError("an sqlite queue URL is sqlite:///relative/file.db or sqlite:////absolute/file.db")
        from app.queue.sqlite import SQLiteQueue

        return SQLiteQueue(path)
    if parts.scheme in ("redis", "rediss"):
        from app.queue.redis import RedisQueue

        return RedisQueue(url)
    raise ValueError(f"async queue URL scheme {parts.scheme!r} is not one of sqlite, redis, rediss")
