"""Any method on /function/{name}[.{namespace}][/{path}]: the call goes to the function as sent."""

from __future__ import annotations

import time
from typing import Iterator

from flask import Blueprint, Response, request

from app import metrics
from app.errors import GatewayError
from app.web.invocation import incoming_call
from app.web.state import forwarder

bp = Blueprint("proxy", __name__)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_CHUNK = 64 * 1024


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
