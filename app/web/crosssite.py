"""Refusal of cross-site requests that would change state through the management API.

A browser that holds the gateway's basic-auth credentials sends them with every request to the
gateway, including those another web site's page makes. Such a page can send a POST without a
CORS preflight (a JSON body labelled ``text/plain``), so without this check a page a user visits
could deploy any image on their cluster. Browsers say where a request comes from: they send
``Sec-Fetch-Site`` and, on every POST, PUT and DELETE, ``Origin``. Clients that are not browsers
(faas-cli, the SDKs, curl, Alertmanager) send neither and are not affected.

Only state-changing methods on the authenticated ``/system`` routes (and the dashboard's sign-in and
sign-out forms under ``/ui/``) are checked: reads cannot be
seen by another site's page without CORS headers, which the gateway never sends, and function
routes need no credentials, so a cross-site call gains nothing a direct one would not have.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, request

from app.errors import Forbidden
from app.web.auth import SAFE_METHODS, is_protected

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """An origin as (scheme, host, port), the scheme's default port filled in; None for an
    opaque origin such as ``null`` or anything that is not an http(s) origin."""
    try:
        parts = urlsplit(url.lower())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname, port


def cross_site_reason(method: str, headers, scheme: str, host: str) -> str | None:
    """Why a request to this gateway (reached as ``scheme://host``) must be refused as
    cross-site, or None when it may go on. ``headers`` is any case-insensitive mapping."""
    if method in SAFE_METHODS:
        return None
    if headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return "The browser marked this request as cross-site (Sec-Fetch-Site: cross-site)"
    origin = headers.get("Origin")
    if origin is None:
        return None
    own = _origin(f"{scheme}://{host}")
    if own is not None and _origin(origin) == own:
        return None
    return f"The request comes from a page of another origin ({origin!r} is not this gateway's)"


def is_guarded(path: str, method: str) -> bool:
    """Whether a ``method`` change at ``path`` is refused from other sites: the management API
    (cancels included), and the dashboard's own forms (signing in and out)."""
    return is_protected(path, method) or path.startswith("/ui/")


def install_cross_site_guard(app: Flask) -> None:
    """Refuse state-changing ``/system`` and ``/ui/`` requests from another site's page:
    Forbidden (403)."""

    @app.before_request
    def _refuse_cross_site() -> None:
        if not is_guarded(request.path, request.method):
            return
        reason = cross_site_reason(request.method, request.headers, request.scheme, request.host)
        if reason:
            raise Forbidden(f"{reason}; the management API takes changes only from its own pages and from non-browser clients.")
