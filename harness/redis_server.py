"""A redis-server of one's own for the Redis queue backend: the tests' and the benchmarks'.

It is durable as docs/api.md asks of a production Redis (append-only file, fsync on every write),
on a free port, with its files in a folder the caller owns. ``docker_bridge_address`` is the
host's address on docker_gwbridge, where a gateway in a container reaches such a server.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from harness import docker, free_port


def docker_bridge_address() -> str:
    """The host's own address on docker_gwbridge (its gateway), which containers reach."""
    return docker("network", "inspect", "docker_gwbridge", "--format", "{{(index .IPAM.Config 0).Gateway}}")


class RedisServer:
    """A redis-server on a free port that appends every write to ``folder`` and fsyncs it.

    It listens on loopback, and also on ``also_on`` (such as ``docker_bridge_address()``, for a
    gateway in a container); ``url`` uses the last address it listens on. ``start`` raises
    RuntimeError when redis-server is missing or does not answer.
    """

    def __init__(self, folder: Path, also_on: str | None = None):
        self.folder = folder
        self.port = free_port()
        self.addresses = ["127.0.0.1"] + ([also_on] if also_on else [])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.addresses[-1]}:{self.port}/0"

    @property
    def local_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        """Start it (again, on the same port and folder) and wait until it answers."""
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed: run `make tools` or `apt-get install redis-server`")
        command = ["redis-server", "--bind", *self.addresses, "--protected-mode", "no", "--port", str(self.port),
                   "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)]
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
                        raise RuntimeError(f"redis-server did not start on port {self.port}") from None
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
