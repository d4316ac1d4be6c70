"""A gunicorn-served gateway on a loopback port for integration tests, and HTTP helpers with the
tests' credentials."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import harness
from harness import basic_auth

USER, PASSWORD = "it-admin", "it-password"
AUTH = basic_auth(USER, PASSWORD)


class Gateway(harness.Gateway):
    """The gunicorn-served gateway of harness (its own loopback port and state folder), with the
    tests' credentials."""

    user, password = USER, PASSWORD


def call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes, dict]:
    """One HTTP request with the test credentials; returns status, body and headers, also for errors."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={**AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)
