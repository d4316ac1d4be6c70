"""NDJSON streaming of log messages with a deadline and prompt clean-up.

Headers go out before the first message (an empty first chunk makes the server send them), each
batch of messages is written as soon as it arrives, one line per message, and a watcher ends the stream when its
deadline passes or the client has gone: it closes the LogStream, whose blocked read then
returns, so the generator finishes its current line and the body ends cleanly. Threads become
greenlets under gunicorn's gevent worker, so a quiet stream costs no OS thread there.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from typing import Any, Callable, Iterator

from app.errors import BackendUnavailable, GatewayError
from app.models import LogMessage
from app.provider import LogStream

log = logging.getLogger(__name__)
# How often the watcher looks for a departed client; it bounds how long a Docker log connection
# outlives its reader.
POLL_INTERVAL = 0.5


class StreamSlots:
    """A cap on the log streams one worker process keeps open at once."""

    def __init__(self, limit: int):
        self._slots = threading.BoundedSemaphore(limit)
        self.limit = limit

    def take(self) -> None:
        """Reserve a slot. Raises BackendUnavailable (503) when all are in use."""
        if not self._slots.acquire(blocking=False):
            raise BackendUnavailable(
                f"This gateway worker already serves {self.limit} log streams; retry later.", {"Retry-After": "5"}
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


def ndjson_stream(
    messages: LogStream, encode: Callable[[LogMessage], Any], deadline: float, client: socket.socket | None
) -> Iterator[bytes]:
    """Yield ``messages``, each turned into JSON by ``encode``, one per line, until they end,
    ``deadline`` seconds pass, or the client goes."""
    done = threading.Event()
    end = time.monotonic() + deadline

    def watch() -> None:
        while not done.wait(max(0.0, min(POLL_INTERVAL, end - time.monotonic()))):
            if time.monotonic() >= end or client_gone(client):
                messages.close()
                return

    threading.Thread(target=watch, name="log-stream-watcher", daemon=True).start()
    try:
        yield b""
        for batch in messages:
            if batch:
                yield b"".join(json.dumps(encode(m), ensure_ascii=False).encode("utf-8") + b"\n" for m in batch)
    except GatewayError as exc:
        # Headers are out; the only honest thing left is to end the body and say why in the log.
        log.warning("log stream ended early: %s", exc.message)
    finally:
        done.set()
        messages.close()
