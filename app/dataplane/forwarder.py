"""The streaming reverse proxy behind ``/function/{name}``.

Request and response bodies stream through in 64 KiB pieces (memory stays flat whatever their
size), hop-by-hop headers are dropped both ways, ``X-Forwarded-*`` are set, ``X-Call-Id`` and
``X-Start-Time`` are added when absent and returned, redirects are passed back, never followed.
Connections to each task address are pooled and kept alive. A refused connection is retried on
another address (nothing was sent yet); a failure after that is a 502, a function slower than
``upstream_timeout`` a 504, both marked ``X-OpenFaaS-Internal: proxy``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Iterable, Iterator

import urllib3
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from app.dataplane.upstreams import Upstreams
from app.errors import UpstreamFailed, UpstreamTimeout

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_CHUNK = 64 * 1024
CONNECT_TIMEOUT = 5.0
# A refused connection means that task is gone; a few other addresses are worth trying.
CONNECT_ATTEMPTS = 3


def end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` without hop-by-hop ones, including those the Connection header names."""
    headers = list(headers)
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(name, value) for name, value in headers if name.lower() not in HOP_BY_HOP | named]


@dataclass(frozen=True)
class Call:
    """One invocation as the proxy forwards it."""

    function: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    call_id: str
    start_time: str


def prepare_call(
    function: str,
    method: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    *,
    peer: str,
    host: str,
    scheme: str,
) -> Call:
    """The headers a function receives: end-to-end ones plus forwarding and call tracking.

    ``peer`` is the address that connected to the gateway; it is appended to X-Forwarded-For.
    """
    kept = [(name, value) for name, value in end_to_end(headers) if name.lower() != "host"]
    lower = {name.lower(): value for name, value in kept}
    forwarded_for = f"{lower['x-forwarded-for']}, {peer}" if "x-forwarded-for" in lower else peer
    call_id = lower.get("x-call-id") or str(uuid.uuid4())
    start_time = lower.get("x-start-time") or str(time.time_ns())
    replaced = {"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-call-id", "x-start-time"}
    kept = [(name, value) for name, value in kept if name.lower() not in replaced]
    kept += [
        ("X-Forwarded-For", forwarded_for),
        ("X-Forwarded-Host", host),
        ("X-Forwarded-Proto", scheme),
        ("X-Call-Id", call_id),
        ("X-Start-Time", start_time),
    ]
    return Call(function, method, path, query, kept, call_id, start_time)


@dataclass
class Reply:
    """A function's answer: status, end-to-end headers and a body to stream."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterator[bytes]


class Forwarder:
    """Sends Calls to function tasks over pooled keep-alive connections."""

    def __init__(self, upstreams: Upstreams, upstream_timeout: float, pool_size: int = 32):
        self.upstreams = upstreams
        self.timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=upstream_timeout)
        self.upstream_timeout = upstream_timeout
        # One pool per task address; kept-alive connections are reused across calls.
        self.pools = urllib3.PoolManager(num_pools=256, maxsize=pool_size, block=False, retries=False)

    def forward(self, call: Call, body: Iterable[bytes] | None, has_length: bool) -> Reply:
        """Send ``call`` with ``body`` and return the reply, its body not yet read.

        Raises FunctionNotFound (404), NoReadyReplica (503), UpstreamFailed (502) and
        UpstreamTimeout (504); the reply itself may carry any status the function chose.
        """
        target = call.path or "/"
        if call.query:
            target += "?" + call.query
        headers = urllib3.HTTPHeaderDict()
        for name, value in call.headers:
            headers.add(name, value)
        for attempt in range(CONNECT_ATTEMPTS):
            address = self.upstreams.address(call.function)
            try:
                response = self.pools.connection_from_url(f"http://{address}").urlopen(
                    call.method,
                    target,
                    body=body,
                    headers=headers,
                    chunked=body is not None and not has_length,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    decode_content=False,
                    timeout=self.timeout,
                    release_conn=False,
                )
            except ConnectTimeoutError as exc:
                # Refused, unreachable or silent before anything was sent (urllib3's
                # NewConnectionError is a ConnectTimeoutError too): that task is gone, try another.
                self.upstreams.forget(call.function)
                if attempt == CONNECT_ATTEMPTS - 1:
                    raise UpstreamFailed(f"Function {call.function} could not be reached: {_reason(exc)}.") from None
                continue
            except ReadTimeoutError:
                raise UpstreamTimeout(
                    f"Function {call.function} did not answer within {self.upstream_timeout:g}s."
                ) from None
            except (Urllib3Error, OSError) as exc:
                self.upstreams.forget(call.function)
                raise UpstreamFailed(f"Function {call.function} failed: {_reason(exc)}.") from None
            return Reply(response.status, end_to_end(response.headers.items()), _stream(response))
        raise AssertionError("unreachable")  # pragma: no cover


def _reason(exc: Exception) -> str:
    # urllib3 prefixes its messages with the connection object's repr, which helps nobody.
    return str(exc).split(": ", 1)[-1]


def _stream(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The reply body in pieces; a connection is pooled again only when fully read."""
    complete = False
    try:
        yield from response.stream(_CHUNK, decode_content=False)
        complete = True
    except (Urllib3Error, OSError):
        # The status line is already out to the client: all that is left is to stop.
        pass
    finally:
        if complete:
            response.release_conn()
        else:
            response.close()
