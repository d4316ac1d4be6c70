"""The durable queue behind /async-function: the stored call, its delivery, and the interface.

The HTTP layer ``put``s a call and answers 202 only when ``put`` returned, so an accepted call is
on disk. Workers ``take`` calls, invoke the function, post the callback and only then ``ack``:
delivery is at least once. A call taken by a worker that died stays stored, and another worker
takes it over with ``reclaim`` once it has been idle long enough. A call to retry later is given
back with ``release`` and a delay, so the wait lives in the store: any worker may take it when it
is due, and a restart loses no retry. ``Delivery.attempt`` counts the hand-outs; a worker moves a
call past its attempts (one that keeps killing its workers, say) out with ``dead_letter``.

Nothing stored is lost: a stored call that cannot be decoded (written by another version, or
damaged) is moved by ``take`` or ``reclaim`` to the dead letters, bytes as stored, and the rest of
the batch is handed out as usual. Dead letters are kept for an operator; ``dead_letters`` counts
them.

Two backends: ``sqlite`` (``app.queue.sqlite``, one file, no server, for one node) and ``redis``
(``app.queue.redis``, Redis Streams, for gateways on several nodes). ``open_queue`` picks one by
URL scheme.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit


@dataclass(frozen=True)
class AsyncCall:
    """One accepted async request, exactly as the worker will send it to the function.

    ``function`` is the canonical reference (``name``, or ``name.namespace`` outside the default
    namespace: calls stored before namespaces existed name default-namespace functions), and
    ``namespace`` the function's namespace; ``path`` is what followed the function's name (``""``
    or starting with ``/``); ``headers`` keep their order and repeats; ``enqueued_at`` is unix time.
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
        }
        # json.dumps escapes every newline inside strings, so the first b"\n" ends the header.
        return json.dumps(header, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> "AsyncCall":
        """The call ``to_bytes`` encoded; raises ValueError for anything else."""
        if not isinstance(data, bytes):
            raise ValueError(f"a stored async call is {type(data).__name__}, not bytes")
        header, newline, body = data.partition(b"\n")
        if not newline:
            raise ValueError("a stored async call has no header line")
        try:
            values = json.loads(header)
            values["headers"] = [(name, value) for name, value in values["headers"]]
            return cls(body=body, **values)
        except (TypeError, KeyError, ValueError) as exc:
            raise ValueError(f"a stored async call has a malformed header: {exc}") from None


@dataclass(frozen=True)
class Delivery:
    """A call handed to a consumer: ``message_id`` is the backend's id, ``attempt`` is 1 for the
    first hand-out and one more for each later one (reclaim, or take after release)."""

    message_id: str
    call: AsyncCall
    attempt: int


class Queue(Protocol):
    """A durable, at-least-once queue of AsyncCalls shared by every gateway process.

    Every method raises ``app.errors.BackendUnavailable`` when the store cannot be reached or
    cannot write; nothing is lost then, the caller retries later or refuses the request.
    """

    def put(self, call: AsyncCall) -> None:
        """Store ``call``; returns only once it is durably stored."""

    def take(self, consumer: str, count: int, block_seconds: float) -> list[Delivery]:
        """Up to ``count`` calls no consumer holds, now held by ``consumer``; waits up to
        ``block_seconds`` for the first one and returns ``[]`` when none came. A call that cannot
        be decoded is moved to the dead letters instead of handed out."""

    def reclaim(self, consumer: str, idle_seconds: float, count: int) -> list[Delivery]:
        """Up to ``count`` calls held by any consumer (this one included) for at least
        ``idle_seconds`` without an ack or release, now held by ``consumer``. A call that cannot be
        decoded is moved to the dead letters instead of handed out."""

    def ack(self, delivery: Delivery) -> None:
        """Remove the call for good: it was invoked and its callback sent. Harmless when the call
        is gone already; a call another consumer reclaimed since is removed all the same."""

    def release(self, delivery: Delivery, delay_seconds: float) -> None:
        """Give the call back so that ``take`` hands it out again after ``delay_seconds``; the
        delivery is not acked afterwards. Does nothing when the delivery is stale (acked, or
        reclaimed since): its new holder decides."""

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move the call, with ``reason``, from the queue to the dead letters, where no consumer
        gets it again. Does nothing when the delivery is stale (acked, or reclaimed since)."""

    def depth(self) -> int:
        """How many calls are stored and not yet acked, held or not (dead letters not included)."""

    def dead_letters(self) -> int:
        """How many calls the dead letters hold."""

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
