"""End-to-end fixtures: the stack as `make up` starts it, in a project of its own.

The stack gets its own compose project, env file, credentials folder and port, so it never
touches a stack a developer runs; `make down` and the removal of its queue volume clean it up
afterwards, also when a test failed.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import docker
import pytest

from harness import free_port
from tests.e2e.faascli import FaasCli, faas_cli_path
from tests.e2e.stack import Stack, stack_on_redis
from tests.swarm import (  # noqa: F401 - fixtures shared with the integration tests
    docker_api,
    of_watchdog_image,
    session_cleanup,
    swarm_cleanup,
    watchdog_image,
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
        # So the dashboard's charts have points within the browser tests' patience.
        "SERIES_INTERVAL": "3s",
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


@pytest.fixture(scope="module")
def faas_cli_binary() -> str:
    """The real faas-cli."""
    return faas_cli_path()


@pytest.fixture(scope="module")
def cli(stack, faas_cli_binary, tmp_path_factory) -> FaasCli:
    """faas-cli logged in to the stack, with a HOME of the module's own."""
    cli = FaasCli(faas_cli_binary, stack.url, tmp_path_factory.mktemp("faas-cli-home"))
    logged_in = cli.login(stack.user, stack.password)
    assert logged_in.rc == 0, str(logged_in)
    return cli


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, stack, tmp_path):
    """The stack with each queue backend; Redis is a server of the test's own, on the host."""
    if request.param == "sqlite":
        yield stack
        return
    with stack_on_redis(stack, tmp_path) as (with_redis, _):
        yield with_redis
