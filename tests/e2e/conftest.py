"""End-to-end fixtures: the stack as `make up` starts it, in a project of its own.

The stack gets its own compose project, env file, credentials folder and port, so it never
touches a stack a developer runs; `make down` and the removal of its queue volume clean it up
afterwards, also when a test failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.gateway import ROOT, free_port
from tests.integration.conftest import (  # noqa: F401 - fixtures shared with the integration tests
    docker_api,
    of_watchdog_image,
    session_cleanup,
    swarm_cleanup,
    watchdog_image,
)
from tests.unit.test_queue import RedisServer


@dataclass(frozen=True)
class Stack:
    url: str
    user: str
    password: str
    env: dict[str, str]
    credentials: Path
    # What the first `make up` printed: its stdout, then its stderr.
    started: str = ""

    def make(self, target: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", target], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=1800
        )


@pytest.fixture(scope="session")
def stack(tmp_path_factory, docker_api) -> Stack:  # noqa: F811 - the imported fixture
    folder = tmp_path_factory.mktemp("stack")
    port = free_port()
    env = {
        **os.environ,
        "ENV_FILE": str(folder / "stack.env"),
        "COMPOSE_PROJECT_NAME": f"e2e{uuid.uuid4().hex[:6]}",
        "GATEWAY_PORT": str(port),
        "CREDENTIALS_DIR": str(folder / "credentials"),
        # Short, so the deadline test does not wait a minute.
        "UPSTREAM_TIMEOUT": "5s",
        # So calls held by a killed gateway are taken over within the test's patience.
        "ASYNC_CLAIM_TIMEOUT": "10s",
    }
    credentials = folder / "credentials"
    stack = Stack(f"http://127.0.0.1:{port}", "", "", env, credentials)
    try:
        started = stack.make("up")
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        yield Stack(
            stack.url,
            (credentials / "basic-auth-user").read_text(),
            (credentials / "basic-auth-password").read_text(),
            env,
            credentials,
            started.stdout + started.stderr,
        )
    finally:
        stopped = stack.make("down")
        # `make down` keeps the queue volume for a person's stack; the test's own goes with it.
        with contextlib.suppress(docker.errors.NotFound):
            docker_api.remove_volume(f"{env['COMPOSE_PROJECT_NAME']}_async-queue")
        assert stopped.returncode == 0, stopped.stderr[-3000:]


@contextlib.contextmanager
def stack_on_redis(stack: Stack, folder: Path):
    """The stack switched to a Redis queue of the test's own (on the host, reachable from the
    gateway container over docker_gwbridge); yields the stack and the server, and switches the
    stack back to its own queue afterwards."""
    bridge = subprocess.run(
        ["docker", "network", "inspect", "docker_gwbridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    server = RedisServer(folder, also_on=bridge).start()
    with_redis = dataclasses.replace(stack, env={**stack.env, "ASYNC_QUEUE": server.url})
    try:
        started = with_redis.make("up")
        assert started.returncode == 0, started.stderr[-3000:]
        yield with_redis, server
    finally:
        restored = stack.make("up")
        server.stop()
        assert restored.returncode == 0, restored.stderr[-3000:]
