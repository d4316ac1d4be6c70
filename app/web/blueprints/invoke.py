"""Any method on /function/{name}[.{namespace}][/{path}]: the call goes to the function as sent.

A websocket upgrade (a GET with ``Connection: Upgrade`` and ``Upgrade: websocket``, which
werkzeug routes only to rules marked ``websocket``) becomes a tunnel to the function
(app/dataplane/websocket.py) over the client's connection, which gunicorn hands the application
as ``gunicorn.socket``; it runs in place of a response, its idle deadline ``read_timeout``, and
counts as one call with status 101. gunicorn's access log never sees it end, so a line is
logged when it does, with the request's X-Request-Id.
"""

from __future__ import annotations

import logging
import time
from typing import Iterator

from flask import Blueprint, Response, request

from app import metrics
from app.dataplane.websocket import Tunnel, open_tunnel
from app.errors import GatewayError, NotUpgradable
from app.web.invocation import incoming_call
from app.web.state import forwarder, settings, upstreams

log = logging.getLogger(__name__)
bp = Blueprint("proxy", __name__)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_CHUNK = 64 * 1024
# Where gunicorn puts the client's connection in the WSGI environment.
_CLIENT_SOCKET = "gunicorn.socket"


def _timed(body: Iterator[bytes], function: str, status: int, started: float) -> Iterator[bytes]:
    """The body, counting the call once it has been sent in full (or abandoned)."""
    try:
        yield from body
    finally:
        metrics.record_invocation(function, status, time.monotonic() - started)


@bp.route("/function/<target>", methods=METHODS, provide_automatic_options=False, strict_slashes=False)
@bp.route("/function/<target>/<path:rest>", methods=METHODS, provide_automatic_options=False)
def invoke(target: str, rest: str = ""):
    call = incoming_call(target, "/function/")
    function = call.function
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    has_length = request.content_length is not None
    body = iter(lambda: request.stream.read(_CHUNK), b"") if has_length or chunked else None
    started = time.monotonic()
    try:
        reply = forwarder().forward(call, body, has_length)
    except GatewayError as exc:
        metrics.record_invocation(function, exc.status, time.monotonic() - started)
        raise
    timed = _timed(reply.body, function, reply.status, started)
    response = Response(timed, status=reply.status, headers=reply.headers, direct_passthrough=True)
    if not any(name.lower() == "content-type" for name, _ in reply.headers):
        del response.headers["Content-Type"]  # Flask's default, not the function's
    response.headers.setdefault("X-Call-Id", call.call_id)
    response.headers.setdefault("X-Start-Time", call.start_time)
    return response


@bp.route("/function/<target>", methods=["GET"], websocket=True, strict_slashes=False)
@bp.route("/function/<target>/<path:rest>", methods=["GET"], websocket=True)
def invoke_websocket(target: str, rest: str = ""):
    call = incoming_call(target, "/function/")
    if _CLIENT_SOCKET not in request.environ:
        raise NotUpgradable("Websockets need the gateway served by gunicorn, which hands over the client's connection.")
    started = time.monotonic()
    try:
        tunnel = open_tunnel(upstreams(), call, settings().upstream_timeout)
    except GatewayError as exc:
        metrics.record_invocation(call.function, exc.status, time.monotonic() - started)
        raise
    return _TunnelResponse(tunnel, settings().read_timeout, call.function, started, request.headers.get("X-Request-Id", "-"))


class _TunnelResponse(Response):
    """Runs a websocket tunnel where a response would be written, over the client's own
    connection, then tells gunicorn the connection is done: StopIteration makes its worker close
    the connection without writing anything more (its websocket users do the same)."""

    def __init__(self, tunnel: Tunnel, idle_timeout: float, function: str, started: float, request_id: str):
        super().__init__(status=101)
        self.tunnel, self.idle_timeout, self.function = tunnel, idle_timeout, function
        self.started, self.request_id = started, request_id

    def __call__(self, environ, start_response):
        try:
            self.tunnel.run(environ[_CLIENT_SOCKET], self.idle_timeout)
        finally:
            seconds = time.monotonic() - self.started
            metrics.record_invocation(self.function, 101, seconds)
            log.info("websocket to %s closed after %.1fs rid=%s", self.function, seconds, self.request_id)
        raise StopIteration
