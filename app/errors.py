"""Domain errors, each with the HTTP status it becomes.

Every layer raises a ``GatewayError`` subclass carrying one human sentence that names the thing
at fault; ``app.web.handlers`` renders it as a ``text/plain`` body with the subclass's status.
"""

from __future__ import annotations


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


class NotUpgradable(ProxyError):
    """A websocket upgrade reached a server that cannot hand the connection over (501)."""

    status = 501


class UpstreamTimeout(ProxyError):
    """The function did not answer within ``upstream_timeout`` (504)."""

    status = 504
