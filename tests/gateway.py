"""A gunicorn-served gateway on a loopback port, for integration tests and benchmarks."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "it-admin", "it-password"


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header for HTTP basic auth."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


AUTH = basic_auth(USER, PASSWORD)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gateway:
    """A gunicorn process serving ``wsgi:app`` with gevent workers on a loopback port, with a
    state folder of its own (async queue, metrics), removed when it stops."""

    def __init__(self, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._state = tempfile.TemporaryDirectory(prefix="gateway-state-")
        self.state_dir = Path(self._state.name)
        environment = {
            **os.environ,
            "basic_auth_user": USER,
            "basic_auth_password": PASSWORD,
            "state_dir": self._state.name,
            # Nothing sends it nginx's call log; leave the machine's UDP port alone.
            "call_log_port": "0",
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{self.port}", "wsgi:app"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> "Gateway":
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2)
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("gunicorn did not start:\n" + self.process.stdout.read().decode(errors="replace"))
                time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._state.cleanup()


def call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes, dict]:
    """One HTTP request with the test credentials; returns status, body and headers, also for errors."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={**AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)
