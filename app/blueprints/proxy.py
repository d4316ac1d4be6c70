"""Any method on /function/{name}[.{namespace}][/{path}]: the call goes to the function as sent."""

from __future__ import annotations

import time
from typing import Iterator

from flask import Blueprint, Response, current_app, request

from app import metrics
from app.errors import GatewayError
from app.proxy import Call, Forwarder, prepare_call
from app.state import own_function
from app.upstreams import FunctionNotFound

bp = Blueprint("proxy", __name__)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_CHUNK = 64 * 1024


def forwarder() -> Forwarder:
    return current_app.extensions["openfaas.forwarder"]


def function_of(target: str) -> str:
    """The function a ``name[.namespace]`` path segment names; FunctionNotFound (404) if none can."""
    name = own_function(target)
    if name is None:
        raise FunctionNotFound(f"Function {target} not found.")
    return name


def raw_rest(target: str, prefix: str) -> str:
    """The path after the function, exactly as the client encoded it."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    return raw.split("?", 1)[0][len(f"{prefix}{target}") :]


def _timed(body: Iterator[bytes], function: str, status: int, started: float) -> Iterator[bytes]:
    """The body, counting the call once it has been sent in full (or abandoned)."""
    try:
        yield from body
    finally:
        metrics.record_invocation(function, status, time.monotonic() - started)


def incoming_call(target: str, prefix: str, drop: frozenset[str] = frozenset()) -> Call:
    """This request as a Call to the function ``target`` names (FunctionNotFound, 404, if none).

    ``prefix`` is the route before the name; headers named in ``drop`` (lower case) stay here.
    """
    # With a trusted proxy in front, ProxyFix keeps the address that really connected here.
    peer = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR") or request.remote_addr or ""
    return prepare_call(
        function_of(target),
        request.method,
        raw_rest(target, prefix),
        request.query_string.decode("latin-1"),
        [(name, value) for name, value in request.headers.items() if name.lower() not in drop],
        peer=peer,
        host=request.host,
        scheme=request.scheme,
    )


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
