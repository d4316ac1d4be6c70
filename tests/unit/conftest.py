"""Fixtures for unit tests: the real Flask app over the real Swarm runtime over an in-memory Docker.

Only the Docker Engine is faked (``tests.fakedocker``), so what the gateway decides (ownership,
secret versions, not found and conflicts, replica counts) is the adapter's own code.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Iterator

import pytest

from app import create_app
from app.config import Config
from app.runtime.interfaces import Runtime
from app.runtime.swarm.assembly import swarm_runtime
from tests.fakedocker import FakeDocker
from tests.fakes import FakeLogSource
from tests.queueing import RedisServer

USER, PASSWORD = "admin", "s3cret-pass"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


AUTH = basic(USER, PASSWORD)


@pytest.fixture
def engine() -> Iterator[FakeDocker]:
    engine = FakeDocker()
    yield engine
    engine.close()


@pytest.fixture
def runtime(engine) -> Runtime:
    """The Swarm runtime over the in-memory Engine, prepared as a serving process prepares it."""
    runtime = swarm_runtime(Config(), engine.client())
    runtime.health.prepare()
    return runtime


@pytest.fixture
def logs(runtime) -> FakeLogSource:
    return FakeLogSource(runtime.functions)


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(basic_auth_user=USER, basic_auth_password=PASSWORD, write_timeout=2, state_dir=str(tmp_path))


@pytest.fixture
def app(config, runtime, logs):
    return create_app(config, dataclasses.replace(runtime, logs=logs))


@pytest.fixture
def client(app):
    """A test client that sends the right credentials unless a test overrides the header."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    return client


def deployment(name: str = "echo", **extra) -> dict:
    return {"service": name, "image": "docker.io/functions/alpine:latest", "envProcess": "cat", **extra}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A redis-server of the tests' own on a loopback port (the queue and the autoscaler's lease)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
