"""HTTP basic auth for every ``/system`` route and the internal ``/_/`` ones, on by default, and
the dashboard's sessions.

``/_/routes/table`` holds every namespace's task addresses: nginx refuses ``/_/`` from outside, but the
gateway also listens on the functions' networks, so without credentials any function could read
it. nginx's side (``deploy/nginx-routes.sh``) sends the same credentials, from the same secrets.

Credentials come from the environment (``basic_auth_user``/``basic_auth_password``) when both are
set, otherwise from the files ``basic-auth-user`` and ``basic-auth-password`` in
``secret_mount_path`` (Docker secrets). Both parts are compared in constant time. The check runs
before routing, so a route added under ``/system`` or ``/_/`` later is guarded without any
decorator, and an unauthenticated client cannot tell which of those paths exist.

The dashboard (``/ui/``) signs in with the same credentials through a form and then calls the API
with a session cookie instead of basic auth, because a browser's EventSource and password manager
work with cookies and forms, not with an Authorization header. The cookie is signed with a key
derived from the credentials (the same in every worker and after a restart; changing the password
ends every session), ``HttpOnly`` and ``SameSite=Strict``. A browser attaches cookies to requests
other sites' pages make, so every state-changing request authenticated by the session must also
carry the session's CSRF token in ``X-CSRF-Token``, which only the gateway's own pages can read;
that comes on top of the cross-site refusal of ``app.web.crosssite``. Signing out ends the
session for good: its ID is recorded (``app.web.signouts``), and a copy of the cookie is refused
from then on.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.wrappers import Request

from app.config import Config, ConfigError
from app.errors import Forbidden, Unauthorized
from app.web.signouts import SignOuts

CHALLENGE = {"WWW-Authenticate": 'Basic realm="OpenFaaS"'}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
SESSION_COOKIE = "faas_ui_session"
SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class Credentials:
    user: bytes
    password: bytes

    def match(self, user: str, password: str) -> bool:
        """Constant-time comparison of both parts (no short-circuit on the user name)."""
        user_ok = hmac.compare_digest(user.encode("utf-8"), self.user)
        password_ok = hmac.compare_digest(password.encode("utf-8"), self.password)
        return user_ok & password_ok

    def session_key(self) -> bytes:
        """The key that signs dashboard sessions: secret while the password is, and different
        once it changes."""
        return hashlib.sha256(b"faas-swarm-py dashboard session\0" + self.user + b"\0" + self.password).digest()

    def call_log_token(self) -> str:
        """What nginx starts each call-log datagram with (app.dataplane.calllog): derived from the
        credentials, so every gateway process agrees on it and no function can forge it."""
        return hashlib.sha256(b"faas-swarm-py call log\0" + self.user + b"\0" + self.password).hexdigest()[:32]


def load_credentials(config: Config) -> Credentials:
    """Read the configured credentials.

    Raises ConfigError naming what is missing, so a gateway with auth on never runs open.
    """
    if config.basic_auth_user and config.basic_auth_password:
        return Credentials(config.basic_auth_user.encode("utf-8"), config.basic_auth_password.encode("utf-8"))
    parts = []
    for name in ("basic-auth-user", "basic-auth-password"):
        path = os.path.join(config.secret_mount_path, name)
        try:
            with open(path, "rb") as handle:
                value = handle.read().strip()
        except OSError as exc:
            raise ConfigError(
                f"basic auth is on but {path} cannot be read ({exc.strerror}); set basic_auth_user and "
                "basic_auth_password, provide the files, or set basic_auth=false for local use"
            ) from None
        if not value:
            raise ConfigError(f"basic auth is on but {path} is empty")
        parts.append(value)
    return Credentials(*parts)


PROTECTED_PREFIXES = ("/system", "/_")
# Cancelling an async call (OpenFaaS Pro's route) is a change to the gateway's state, not a call
# to a function: it needs the same credentials as /system.
CANCEL_PREFIX = "/async-function/"


def is_protected(path: str, method: str) -> bool:
    """Whether a ``method`` request to ``path`` needs credentials: everything under ``/system``
    and ``/_/`` (the gateway's internal routes, such as nginx's routing table), and cancelling an
    async call (``DELETE /async-function/{call-id}``)."""
    if method == "DELETE" and path.startswith(CANCEL_PREFIX):
        return True
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PROTECTED_PREFIXES)


def install_basic_auth(app: Flask, credentials: Credentials) -> None:
    """Refuse ``/system`` and ``/_/`` requests (and cancels) with neither the right basic-auth credentials nor a
    signed-in session with 401 and a challenge; refuse a session's state-changing request without
    its CSRF token with 403 (Forbidden)."""

    @app.before_request
    def _require_credentials() -> None:
        if not is_protected(request.path, request.method):
            return
        auth = request.authorization
        if auth is not None and auth.type == "basic" and credentials.match(auth.username or "", auth.password or ""):
            return
        if signed_in_user() is None:
            raise Unauthorized("Authentication with valid basic-auth credentials is required.", CHALLENGE)
        check_csrf()


def install_sessions(app: Flask, credentials: Credentials, sign_outs: SignOuts) -> None:
    """Let the dashboard sign in with ``credentials``: signed, HttpOnly, SameSite=Strict cookies,
    whose sign-outs ``sign_outs`` keeps."""
    app.secret_key = credentials.session_key()
    app.session_interface = _CookieSessions()
    app.extensions["sign_outs"] = sign_outs
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # Set only when signing in: a request still in flight when the user signs out would
        # otherwise send the old cookie back and undo the sign-out.
        SESSION_REFRESH_EACH_REQUEST=False,
    )


class _CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except that a request without the cookie (every API
    client's) gets its empty session at once: building the signer took a tenth of a small
    request's time in the gateway."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def sign_in(credentials: Credentials, user: str, password: str) -> bool:
    """Start a session with a new CSRF token when ``user`` and ``password`` are right; say whether."""
    if not credentials.match(user, password):
        return False
    session.clear()
    session.permanent = True
    session["user"] = user
    session["id"] = secrets.token_urlsafe(16)
    session["csrf"] = secrets.token_urlsafe(32)
    return True


def sign_out() -> None:
    """End the session: for good, since its ID is recorded until the cookie would have expired.
    Raises BackendUnavailable (503) when that cannot be recorded."""
    if "id" in session:
        current_app.extensions["sign_outs"].end(session["id"], time.time() + SESSION_LIFETIME.total_seconds())
    session.clear()


def signed_in_user() -> str | None:
    """Who signed in to the dashboard in this request's session, or None: also when the session
    was signed out, or began before sessions had IDs. Raises BackendUnavailable (503) when the
    sign-outs cannot be read."""
    if "signed_in_user" not in g:
        user, session_id = session.get("user"), session.get("id")
        ended = not user or not session_id or current_app.extensions["sign_outs"].ended(session_id)
        g.signed_in_user = None if ended else user
    return g.signed_in_user


def csrf_token() -> str:
    """The session's CSRF token for the dashboard's pages; empty without a session."""
    return session.get("csrf", "")


def check_csrf(token: str | None = None) -> None:
    """Raise Forbidden (403) for a state-changing request whose CSRF token (``token``, else the
    X-CSRF-Token header) is not the session's."""
    if request.method in SAFE_METHODS:
        return
    sent = token if token is not None else request.headers.get(CSRF_HEADER, "")
    if not csrf_token() or not hmac.compare_digest(sent.encode("utf-8"), csrf_token().encode("utf-8")):
        raise Forbidden(f"The {CSRF_HEADER} of this dashboard session is missing or wrong; reload the page.")
