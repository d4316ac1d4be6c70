"""Small helpers the benchmarks share: HTTP calls with urllib, the stack's credentials, polling
with a bound, a gunicorn-served gateway on a loopback port with the benchmarks' credentials (for
benchmarks that start their own), and where the real OpenFaaS binaries are ($OPENFAAS_BIN_DIR).
What the tests use too is in harness/; bench/ never imports tests/.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import harness
from harness import ROOT, basic_auth

# The credentials a gateway started by `Gateway` below accepts.
USER, PASSWORD = "bench-admin", "bench-password"


def openfaas_binary(name: str) -> Path:
    """The OpenFaaS binary ``name``; SystemExit naming the setting and the docs when it is missing."""
    try:
        return harness.openfaas_binary(name)
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


AUTH = basic_auth(USER, PASSWORD)


def stack_auth(credentials: Path = ROOT / ".credentials") -> dict[str, str]:
    """The Authorization header for the stack `make up` started (its files in .credentials/)."""
    return basic_auth((credentials / "basic-auth-user").read_text(), (credentials / "basic-auth-password").read_text())


def call(
    url: str, method: str = "GET", body: dict | bytes | None = None, headers: dict | None = None, timeout: float = 60
) -> tuple[int, bytes, dict]:
    """One HTTP request; returns status, body and headers, also for error statuses."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 90, interval: float = 0.5) -> None:
    """Poll ``check`` until it is true; SystemExit naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(interval)
    raise SystemExit(f"gave up after {timeout:g}s waiting for {what}")


class Gateway(harness.Gateway):
    """The gunicorn-served gateway of harness, with the benchmarks' credentials."""

    user, password = USER, PASSWORD


class Interrupted(Exception):
    """SIGTERM, turned into an exception so every clean-up still runs."""


def _on_sigterm(signum, frame):
    raise Interrupted()


@contextlib.contextmanager
def cleanly(cleanup: Callable[[], None]) -> Iterator[None]:
    """Run the block, then ``cleanup``, also on failure, Ctrl-C or SIGTERM (exit status 130)."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    except (KeyboardInterrupt, Interrupted):
        print("interrupted: cleaning up", file=sys.stderr, flush=True)
        raise SystemExit(130)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup()
