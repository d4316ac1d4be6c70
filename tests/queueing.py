"""Async-queue helpers shared by the unit, integration and end-to-end tests: a redis-server of a
test's own, and calls to store."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from app.queue import AsyncCall
from harness import free_port


class RedisServer:
    """A redis-server on a free port that appends every write to ``folder`` and fsyncs it.

    It listens on loopback, and also on ``also_on`` (such as the host's address on a Docker
    bridge, for a gateway in a container); ``url`` uses the last address it listens on.
    """

    def __init__(self, folder: Path, also_on: str | None = None):
        self.folder = folder
        self.port = free_port()
        self.addresses = ["127.0.0.1"] + ([also_on] if also_on else [])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.addresses[-1]}:{self.port}/0"

    def start(self) -> "RedisServer":
        """Start it (again, on the same port and folder) and wait until it answers."""
        command = ["redis-server", "--bind", *self.addresses, "--protected-mode", "no", "--port", str(self.port), "--save", "",
                   "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)]
        if shutil.which("redis-server") is None:
            # One line, not a traceback, for each test that needs it (a session fixture reports
            # its failure to every test using it). Nothing is skipped.
            pytest.fail("redis-server is not installed: run `make unit` (it installs it) or `apt-get install redis-server`",
                        pytrace=False)
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        pytest.fail(f"redis-server did not start on port {self.port}")
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def make_call(n: int = 0, body: bytes = b"", **extra) -> AsyncCall:
    values = {
        "call_id": f"call-{n}",
        "function": "echo",
        "namespace": "openfaas-fn",
        "method": "POST",
        "path": "/sub",
        "query": "a=1",
        "headers": [("Content-Type", "text/plain"), ("X-Call-Id", f"call-{n}")],
        "body": body or f"body {n}".encode(),
        "callback_url": "http://callback.example/done",
        "enqueued_at": 1700000000.25 + n,
    }
    return AsyncCall(**{**values, **extra})
