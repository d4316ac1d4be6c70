"""Incremental decoding of Docker's service and task log streams (pure, no I/O).

Docker sends non-TTY logs multiplexed: frames of an 8-byte header (stream type, three zero
bytes, big-endian payload length) and a payload. With ``timestamps`` and ``details`` each entry
reads ``<RFC 3339 time> <k=v,...> <message>\\n``. Lines longer than Docker's 16 KiB buffer arrive
as several entries, each with its own prefix, only the last ending in a newline; they are joined
again here. Bytes may be cut anywhere by the network, so the decoder keeps what it cannot use yet.
A stream without frame headers (a TTY service) is read as plain lines, and a line that cannot be
parsed is passed on as text: nothing here ever raises on input.
"""

from __future__ import annotations

from urllib.parse import unquote

from app.domain.models import LogMessage
from app.domain.timestamps import from_docker, now_rfc3339_nano

_HEADER = 8
_TASK_ID_KEY = b"com.docker.swarm.task.id="
# A line is cut into messages of at most this size, so a function that never writes a newline
# cannot make the gateway buffer without bound.
MAX_MESSAGE = 1024 * 1024


class DockerLogDecoder:
    """Feed raw bytes from the Docker log endpoint; get complete LogMessages back."""

    def __init__(self, name: str, namespace: str, max_message: int = MAX_MESSAGE):
        self.name = name
        self.namespace = namespace
        self.max_message = max_message
        self._buffer = bytearray()
        self._framed: bool | None = None  # unknown until the first bytes arrive
        # (stream, instance) -> (timestamp of the first piece, bytes so far) of a line Docker split
        self._partial: dict[tuple[int, str], tuple[str, bytearray]] = {}

    def feed(self, data: bytes) -> list[LogMessage]:
        """Decode what ``data`` completes; keep the rest for the next call."""
        self._buffer += data
        if self._framed is None and self._buffer:
            self._framed = len(self._buffer) < _HEADER or _looks_like_header(self._buffer)
        out: list[LogMessage] = []
        if self._framed:
            while len(self._buffer) >= _HEADER:
                if not _looks_like_header(self._buffer):
                    # Not a frame after all: read the rest as plain lines rather than drop it.
                    self._framed = False
                    break
                size = int.from_bytes(self._buffer[4:8], "big")
                if len(self._buffer) < _HEADER + size:
                    break
                stream = self._buffer[0]
                payload = bytes(self._buffer[_HEADER : _HEADER + size])
                del self._buffer[: _HEADER + size]
                out += self._payload(stream, payload)
        if not self._framed:
            cut = self._buffer.rfind(b"\n") + 1
            if cut:
                payload = bytes(self._buffer[:cut])
                del self._buffer[:cut]
                out += self._payload(1, payload)
        return out

    def finish(self) -> list[LogMessage]:
        """Everything still held when the stream ends: unfinished lines are passed on as they are."""
        out = self._payload(1, bytes(self._buffer)) if self._buffer else []
        self._buffer.clear()
        for (_, instance), (timestamp, text) in self._partial.items():
            out.append(self._message(instance, timestamp, text))
        self._partial.clear()
        return out

    def _payload(self, stream: int, payload: bytes) -> list[LogMessage]:
        out = []
        for line in payload.splitlines(keepends=True):
            out += self._entry(stream, line)
        return out

    def _entry(self, stream: int, line: bytes) -> list[LogMessage]:
        complete = line.endswith(b"\n")
        body = line.rstrip(b"\r\n") if complete else line
        stamp, _, rest = body.partition(b" ")
        try:
            timestamp = from_docker(stamp.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return [self._message("", now_rfc3339_nano(), body)]
        instance, text = _split_details(rest)
        key = (stream, instance)
        if key in self._partial:
            timestamp, earlier = self._partial.pop(key)
            earlier += text
            text = earlier
        if complete or len(text) >= self.max_message:
            return [self._message(instance, timestamp, text)]
        self._partial[key] = (timestamp, bytearray(text))
        return []

    def _message(self, instance: str, timestamp: str, text: bytes) -> LogMessage:
        return LogMessage(self.name, self.namespace, instance, timestamp, bytes(text).decode("utf-8", "replace"))


def _looks_like_header(buffer: bytearray) -> bool:
    return buffer[0] in (0, 1, 2) and buffer[1:4] == b"\x00\x00\x00"


def _split_details(rest: bytes) -> tuple[str, bytes]:
    """Split ``k=v,k=v message`` into the task id and the message."""
    details, _, message = rest.partition(b" ")
    if b"=" not in details:
        return "", rest
    start = details.find(_TASK_ID_KEY)
    if start < 0:
        return "", message
    value = details[start + len(_TASK_ID_KEY) :].partition(b",")[0].decode("utf-8", "replace")
    # Docker URL-encodes detail values; task IDs never need it, so decode only when encoded.
    return (unquote(value) if "%" in value else value), message
