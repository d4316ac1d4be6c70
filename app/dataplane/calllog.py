"""Calls nginx made to functions directly, counted as if the gateway had made them.

nginx sends one syslog datagram per function call it routed itself (``deploy/nginx.conf``:
``access_log syslog:...`` in the ``function_calls`` format: name, status, seconds). Each gunicorn
worker binds the same UDP port with ``SO_REUSEPORT`` and records what it receives in the shared
metrics, so ``gateway_function_invocation_total``, ``gateway_functions_seconds`` and
``invocationCount`` count every call, whichever path it took.

The port is open on every network the gateway is on, functions' included, and a function could
forge calls of another function, which the autoscaler scales on, or of made-up names, which
would grow the metrics' label set. So each line starts with a token only nginx knows (it comes
with the configuration the gateway renders for nginx, app/dataplane/route_table.py, which only the
gateway's credentials read), and a line without it is dropped. A line with it names a pool of the
routing table, which the gateway rendered from its functions, so it is counted as it is: also the
call of a function deployed a moment ago, or deleted a moment ago while nginx still routed it.
Threads here are greenlets under gunicorn's gevent worker.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket

from app import metrics
from app.background.loop import BackgroundLoop
from app.dataplane.route_table import POOL_PREFIX

log = logging.getLogger(__name__)

# Room for a burst of datagrams while the worker is busy with other requests (the kernel caps it
# at net.core.rmem_max).
_RECEIVE_BUFFER = 4 * 1024 * 1024
# The token of a gateway without basic auth: there, every route is open, and so is the call log.
OPEN_TOKEN = "open"


def parse(datagram: bytes) -> tuple[str, str, int, float] | None:
    """(token, function, status, seconds) from one syslog datagram, or None when it is not a call
    line.

    nginx writes ``<PRI>TIMESTAMP TAG: MESSAGE``; the message is ``token fn_<name> status seconds``
    (the call log's token, the function's pool, status and seconds).
    """
    message = datagram.rpartition(b": ")[2].split()
    if len(message) != 4 or not message[1].startswith(POOL_PREFIX.encode()):
        return None
    token, pool, status, seconds = message
    try:
        return token.decode("ascii"), pool[len(POOL_PREFIX):].decode("ascii"), int(status), float(seconds)
    except (UnicodeDecodeError, ValueError):
        return None


class CallLog:
    """Receives nginx's call lines on ``port`` (UDP) and records those carrying ``token``;
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
        """Record one datagram's call; whether it was a call line carrying the token."""
        line = parse(datagram)
        if line is None or not hmac.compare_digest(line[0], self.token):
            return False
        metrics.record_invocation(*line[1:])
        return True

    def _receive(self) -> None:
        """The loop's one long round: record datagrams as they come until stopped. Not a round
        per datagram: nginx sends one per call, and the loop's pause and error handling would
        be paid on each."""
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
