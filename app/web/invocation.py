"""The request being served, read as a call to a function: what the sync route
(``/function/``) and the async route (``/async-function/``) share.

Both take the function from the first path segment (``name`` or ``name.namespace``) and pass on
the rest of the path exactly as the client encoded it, with the query and headers as sent.
"""

from __future__ import annotations

from flask import request

from app.dataplane.forwarder import Call, prepare_call
from app.errors import FunctionNotFound
from app.web.state import own_function


def function_of(target: str) -> str:
    """The canonical reference (``name``, or ``name.namespace`` outside the default namespace)
    of the function a ``name[.namespace]`` path segment names; FunctionNotFound (404) if none
    can be meant."""
    name = own_function(target)
    if name is None:
        raise FunctionNotFound(f"Function {target} not found.")
    return name


def _raw_rest(target: str, prefix: str) -> str:
    """The path after the function, exactly as the client encoded it."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    return raw.split("?", 1)[0][len(f"{prefix}{target}") :]


def incoming_call(target: str, prefix: str, drop: frozenset[str] = frozenset()) -> Call:
    """This request as a Call to the function ``target`` names (FunctionNotFound, 404, if none);
    the Call's ``function`` is the canonical reference.

    ``prefix`` is the route before the name; headers named in ``drop`` (lower case) stay here.
    """
    # With a trusted proxy in front, ProxyFix keeps the address that really connected here.
    peer = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR") or request.remote_addr or ""
    return prepare_call(
        function_of(target),
        request.method,
        _raw_rest(target, prefix),
        request.query_string.decode("latin-1"),
        [(name, value) for name, value in request.headers.items() if name.lower() not in drop],
        peer=peer,
        host=request.host,
        scheme=request.scheme,
    )
