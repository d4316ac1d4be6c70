"""Streamed responses (NDJSON log lines, Server-Sent Events) with a deadline and prompt clean-up.

Headers go out before the first message (a first chunk makes the server send them), each batch
is written as soon as it arrives, and a watcher ends the stream when its deadline passes or the
client has gone: it closes the stream, whose blocked read then returns, so the generator
finishes its current message and the body ends cleanly. An event stream also writes a comment
whenever it has been quiet for ``HEARTBEAT`` seconds, so that proxies do not cut it as idle.
Threads become greenlets under gunicorn's gevent worker, so a quiet stream costs no OS thread.

A streaming view names its ``FunctionStream`` (the query's schema, the body's format, the items'
encoder) and the source it opens; the request's query, namespace, slot and socket are handled here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import queue
import select
import socket
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Protocol, TypeVar

from flask import Response, request
from marshmallow import Schema

from app.domain.models import FunctionEvent, LogMessage
from app.errors import BackendUnavailable, GatewayError
from app.runtime.interfaces import EventStream, LogStream
from app.web.schemas import load_query

log = logging.getLogger(__name__)
# How often the watcher looks for a departed client; it bounds how long a Docker connection
# outlives its reader.
POLL_INTERVAL = 0.5
# The longest an event stream stays silent; nginx's proxy_read_timeout must be longer.
HEARTBEAT = 15.0


class StreamSlots:
    """A cap on the streams (logs and events together) one worker process keeps open at once."""

    def __init__(self, limit: int):
        self._slots = threading.BoundedSemaphore(limit)
        self.limit = limit

    def take(self) -> None:
        """Reserve a slot. Raises BackendUnavailable (503) when all are in use."""
        if not self._slots.acquire(blocking=False):
            raise BackendUnavailable(
                f"This gateway worker already serves {self.limit} log streams and event streams; retry later.",
                {"Retry-After": "5"},
            )

    def give_back(self) -> None:
        self._slots.release()


def client_gone(sock: socket.socket | None) -> bool:
    """Whether the peer of ``sock`` has closed its side (False when it cannot be told)."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        # A request body or a pipelined request would also be readable; only EOF means gone.
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class _Closable(Protocol):
    def close(self) -> None: ...


@contextlib.contextmanager
def _watched(stream: _Closable, deadline: float, client: socket.socket | None) -> Iterator[None]:
    """Close ``stream`` when ``deadline`` seconds pass or the client goes, and on leaving."""
    done = threading.Event()
    end = time.monotonic() + deadline

    def watch() -> None:
        while not done.wait(max(0.0, min(POLL_INTERVAL, end - time.monotonic()))):
            if time.monotonic() >= end or client_gone(client):
                stream.close()
                return

    threading.Thread(target=watch, name="stream-watcher", daemon=True).start()
    try:
        yield
    except GatewayError as exc:
        # Headers are out; the only honest thing left is to end the body and say why in the log.
        log.warning("stream ended early: %s", exc.message)
    finally:
        done.set()
        stream.close()


def ndjson_stream(
    messages: LogStream, encode: Callable[[LogMessage], Any], deadline: float, client: socket.socket | None
) -> Iterator[bytes]:
    """Yield ``messages``, each turned into JSON by ``encode``, one per line, until they end,
    ``deadline`` seconds pass, or the client goes."""
    with _watched(messages, deadline, client):
        yield b""
        for batch in messages:
            if batch:
                yield b"".join(json.dumps(encode(m), ensure_ascii=False).encode("utf-8") + b"\n" for m in batch)


def _pumped(batches: Iterable[list], into: queue.Queue) -> None:
    """Move ``batches`` into ``into``, then None; a failure is logged and ends them."""
    try:
        for batch in batches:
            into.put(batch)
    except GatewayError as exc:
        log.warning("event stream ended early: %s", exc.message)
    finally:
        into.put(None)


def sse_stream(
    events: EventStream,
    encode: Callable[[FunctionEvent], Any],
    deadline: float,
    client: socket.socket | None,
    heartbeat: float = HEARTBEAT,
) -> Iterator[bytes]:
    """Yield ``events`` as Server-Sent Events (``event:`` the type, ``data:`` the JSON from
    ``encode``) until they end, ``deadline`` seconds pass, or the client goes; a comment line
    whenever ``heartbeat`` seconds pass without one."""
    batches: queue.Queue = queue.Queue()
    with _watched(events, deadline, client):
        # The events are read elsewhere, so that a quiet source cannot hold the heartbeat back.
        threading.Thread(target=_pumped, args=(events, batches), name="event-pump", daemon=True).start()
        yield b": stream open\n\n"
        while True:
            try:
                batch = batches.get(timeout=heartbeat)
            except queue.Empty:
                yield b": heartbeat\n\n"
                continue
            if batch is None:
                return
            yield b"".join(
                b"event: %s\ndata: %s\n\n" % (e.type.encode(), json.dumps(encode(e), ensure_ascii=False).encode("utf-8"))
                for e in batch
            )


_Query = TypeVar("_Query")
_Stream = TypeVar("_Stream", bound=_Closable)


@dataclasses.dataclass(frozen=True)
class FunctionStream:
    """What one streaming endpoint serves: the schema of its query (a request that names a
    namespace), the media type of its body, the writer of that body (``ndjson_stream`` or
    ``sse_stream``) and the encoder that turns each item into JSON."""

    query: Schema
    mimetype: str
    write: Callable[[Any, Callable[[Any], Any], float, socket.socket | None], Iterator[bytes]]
    encode: Callable[[Any], Any]

    def respond(
        self,
        open_stream: Callable[[_Query], _Stream],
        namespace_of: Callable[[str | None], str],
        slots: StreamSlots,
        deadline: float,
    ) -> Response:
        """The response to this request: its query, in the namespace ``namespace_of`` makes of
        the one it names, opened by ``open_stream``, written until the stream ends, ``deadline``
        seconds pass or the client goes, holding one of ``slots`` until the server closes it.

        The query is checked and the stream opened before the response starts, so their errors
        (a bad parameter's 400, an unknown function's 404, Docker away's 503) are still plain
        error responses; BackendUnavailable (503) when no slot is free.
        """
        query = load_query(self.query, request)
        query = dataclasses.replace(query, namespace=namespace_of(query.namespace))
        slots.take()
        try:
            stream = open_stream(query)
        except BaseException:
            slots.give_back()
            raise
        # gunicorn's socket to the client tells when the client has gone (there is none elsewhere).
        body = self.write(stream, self.encode, deadline, request.environ.get("gunicorn.socket"))
        # nginx honours X-Accel-Buffering, so nothing is held back by a proxy in front.
        response = Response(body, mimetype=self.mimetype, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        # The server closes every response, also one whose body it never started to send.
        response.call_on_close(slots.give_back)
        return response
