"""HTTP basic auth for every ``/system`` route, on by default.

Credentials come from the environment (``basic_auth_user``/``basic_auth_password``) when both are
set, otherwise from the files ``basic-auth-user`` and ``basic-auth-password`` in
``secret_mount_path`` (Docker secrets). Both parts are compared in constant time. The check runs
before routing, so a route added under ``/system`` later is guarded without any decorator, and an
unauthenticated client cannot tell which ``/system`` paths exist.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

from flask import Flask, request

from app.config import Config, ConfigError
from app.errors import Unauthorized

CHALLENGE = {"WWW-Authenticate": 'Basic realm="OpenFaaS"'}


@dataclass(frozen=True)
class Credentials:
    user: bytes
    password: bytes

    def match(self, user: str, password: str) -> bool:
        """Constant-time comparison of both parts (no short-circuit on the user name)."""
        user_ok = hmac.compare_digest(user.encode("utf-8"), self.user)
        password_ok = hmac.compare_digest(password.encode("utf-8"), self.password)
        return user_ok & password_ok


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


def is_protected(path: str) -> bool:
    """Whether ``path`` is under ``/system`` and so needs credentials."""
    return path == "/system" or path.startswith("/system/")


def install_basic_auth(app: Flask, credentials: Credentials) -> None:
    """Refuse ``/system`` requests without the right credentials with 401 and a challenge."""

    @app.before_request
    def _require_credentials() -> None:
        if not is_protected(request.path):
            return
        auth = request.authorization
        if auth is None or auth.type != "basic" or not credentials.match(auth.username or "", auth.password or ""):
            raise Unauthorized("Authentication with valid basic-auth credentials is required.", CHALLENGE)
