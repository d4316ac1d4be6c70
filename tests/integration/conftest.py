"""Fixtures for tests against the real Docker Swarm: the Docker ones (tests/swarm.py), a runtime,
a Flask client over it, and gunicorn-served gateways.
"""

from __future__ import annotations

import pytest

from app import create_app
from app.config import Config
from app.runtime.interfaces import Runtime
from app.runtime.swarm.assembly import swarm_runtime
from tests.gateway import AUTH, PASSWORD, USER, Gateway
from tests.swarm import (  # noqa: F401 - fixtures for the tests of this folder
    docker_api,
    of_watchdog_image,
    session_cleanup,
    swarm_cleanup,
    watchdog_image,
)


@pytest.fixture
def runtime(docker_api) -> Runtime:  # noqa: F811 - the imported fixture
    return swarm_runtime(Config())


@pytest.fixture
def client(runtime):
    app = create_app(Config(basic_auth_user=USER, basic_auth_password=PASSWORD), runtime)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    return client


@pytest.fixture(scope="module")
def start_gateway(docker_api):  # noqa: F811 - the imported fixture
    """Start gunicorn gateways with extra environment variables; all are stopped afterwards."""
    started: list[Gateway] = []

    def start(**env: str) -> Gateway:
        gateway = Gateway(**env)
        started.append(gateway)
        return gateway.wait_ready()

    yield start
    for gateway in started:
        gateway.stop()
