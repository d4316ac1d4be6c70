"""Domain errors and the one place that turns them into HTTP responses.

Every layer raises a ``GatewayError`` subclass carrying one human sentence that names the thing
at fault; ``register_error_handlers`` renders it as a ``text/plain`` body with the subclass's
status. Anything else that escapes a view is logged with its traceback and answered with a short
500 sentence, so no client ever sees a Python traceback.
"""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """Base of all errors a client may see; ``status`` is the HTTP status it becomes."""

    status = 500

    def __init__(self, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidRequest(GatewayError):
    """The request is malformed or names an impossible value (400)."""

    status = 400


class Unauthorized(GatewayError):
    """Missing or wrong basic-auth credentials (401)."""

    status = 401


class Forbidden(GatewayError):
    """The request is refused whoever sends it, e.g. a browser's cross-site request (403)."""

    status = 403


class NotFound(GatewayError):
    """The named function, secret or namespace does not exist, or is not ours (404)."""

    status = 404


class Conflict(GatewayError):
    """The request clashes with the current state, e.g. a name already taken (409)."""

    status = 409


class PayloadTooLarge(GatewayError):
    """The request body exceeds the configured limit (413)."""

    status = 413


class BackendUnavailable(GatewayError):
    """Docker cannot be reached or is not a Swarm manager right now (503)."""

    status = 503


class BackendFailure(GatewayError):
    """Docker answered with an error we cannot attribute to the request (500)."""

    status = 500


class AlertFailed(GatewayError):
    """Some alerts could not be acted on (500); the message lists ``function: reason`` per line."""

    status = 500

    def __init__(self, failures: list[str], total: int):
        super().__init__(f"Could not handle {len(failures)} of {total} alerts:\n" + "\n".join(failures))


# The proxy's own errors carry this header, so a client can tell them from a function's 5xx.
PROXY_HEADER = {"X-OpenFaaS-Internal": "proxy"}


class ProxyError(GatewayError):
    """An error made by the gateway's proxy rather than by the function; marked as such."""

    def __init__(self, message: str):
        super().__init__(message, dict(PROXY_HEADER))


class FunctionNotFound(ProxyError):
    """A call names no function of this gateway (404)."""

    status = 404


class UpstreamFailed(ProxyError):
    """The function could not be reached, or broke the connection (502)."""

    status = 502


class NoReadyReplica(ProxyError):
    """The function has no replica ready to take the call in time (503)."""

    status = 503


class UpstreamTimeout(ProxyError):
    """The function did not answer within ``upstream_timeout`` (504)."""

    status = 504


def text_response(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """A ``text/plain`` response holding one sentence, newline-terminated."""
    response = Response(message.rstrip("\n") + "\n", status=status, mimetype="text/plain")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that render every error as a plain-text sentence."""

    @app.errorhandler(GatewayError)
    def _gateway_error(error: GatewayError) -> Response:
        return text_response(error.message, error.status, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        # Werkzeug's own errors (unknown path, wrong method, oversized body) keep their status
        # and headers such as Allow, but lose the HTML page.
        response = text_response(error.description or error.name, error.code or 500)
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return text_response("The gateway failed unexpectedly; the error has been logged.", 500)
