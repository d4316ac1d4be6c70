"""Calls nginx made to functions directly, counted as if the gateway had made them.

Each nginx worker counts the calls it routed itself and sends the sums a few times a second as
UDP datagrams (``deploy/nginx-calls.lua``, started by the configuration
app/dataplane/route_table.py renders). Each gunicorn worker binds the same UDP port with
``SO_REUSEPORT`` and records what it receives in the shared metrics, so
``gateway_function_invocation_total``, ``gateway_functions_seconds`` and ``invocationCount``
count every call, whichever path it took.

The port is open on every network the gateway is on, functions' included, and a function could
forge calls of another function, which the autoscaler scales on, or of made-up names, which
would grow the metrics' label set. So each datagram starts with a token only nginx knows (it
comes with the configuration the gateway renders for nginx, which only the gateway's credentials
read), and a datagram without it is dropped. Its lines name pools of the routing table, which
the gateway rendered from its functions, so they are counted as they are: also the calls of a
function deployed a moment ago, or deleted a moment ago while nginx still routed it.
Threads here are greenlets under gunicorn's gevent worker.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
from typing import NamedTuple

from app import metrics
from app.background.loop import BackgroundLoop
from app.dataplane.route_table import POOL_PREFIX

log = logging.getLogger(__name__)

# Room for a burst of datagrams while the worker is busy with other requests (the kernel caps it
# at net.core.rmem_max).
_RECEIVE_BUFFER = 4 * 1024 * 1024
# The token of a gateway without basic auth: there, every route is open, and so is the call log.
OPEN_TOKEN = "open"


class Calls(NamedTuple):
    """One line of a datagram: calls of a function that ended with one status."""

    function: str
    status: int
    calls: int
    seconds: float
    buckets: tuple[int, ...]  # calls per bucket of metrics.FUNCTION_BUCKETS, then +Inf


def parse(datagram: bytes) -> tuple[str, list[Calls]] | None:
    """The token and the lines of one datagram, or None when it is not nginx's sums.

    The datagram is the token on its first line, then one line per pool and status:
    ``fn_<function> <status> <calls> <seconds> <calls per bucket>...``. One line that does not
    parse, or whose bucket counts do not add up, drops the whole datagram.
    """
    token, newline, body = datagram.partition(b"\n")
    if not newline:
        return None
    lines = []
    try:
        for line in body.decode("ascii").splitlines():
            pool, status, calls, seconds, *buckets = line.split(" ")
            sums = Calls(pool.removeprefix(POOL_PREFIX), int(status), int(calls), float(seconds),
                         tuple(int(count) for count in buckets))
            if not pool.startswith(POOL_PREFIX) or not metrics.buckets_add_up(sums.calls, sums.buckets):
                return None
            lines.append(sums)
        return token.decode("ascii"), lines
    except (UnicodeDecodeError, ValueError):
        return None


class CallLog:
    """Receives nginx's sums of calls on ``port`` (UDP) and records those carrying ``token``;
    ``start`` once per process."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.token = token
        self._socket: socket.socket | None = None
        self._loop = BackgroundLoop("call-log", self._receive, what="call log", logger=log, unblock=self._close)

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Every worker process binds the port; the kernel spreads the datagrams among them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        sock.bind(("0.0.0.0", self.port))
        self._socket = sock
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def record(self, datagram: bytes) -> bool:
        """Record one datagram's calls; whether it was nginx's sums carrying the token."""
        parsed = parse(datagram)
        if parsed is None or not hmac.compare_digest(parsed[0], self.token):
            return False
        for line in parsed[1]:
            metrics.record_invocations(*line)
        return True

    def _receive(self) -> None:
        """The loop's one long round: record datagrams as they come until stopped. Not a round
        per datagram: nginx sends several a second, and the loop's pause would delay each."""
        while not self._loop.stopping:
            try:
                datagram = self._socket.recv(2048)
            except OSError:
                if self._loop.stopping:
                    return  # stop() closed the socket
                raise
            self.record(datagram)

    def _close(self) -> None:
        if self._socket is not None:
            # Shutting the socket down wakes a thread blocked in recv (closing it alone does not).
            with contextlib.suppress(OSError):  # an unconnected socket says ENOTCONN, and is woken
                self._socket.shutdown(socket.SHUT_RD)
            self._socket.close()
