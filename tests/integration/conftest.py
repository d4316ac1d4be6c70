"""Fixtures for tests against the real Docker Swarm: the Docker ones (tests/swarm.py), a provider,
a Flask client over it, and gunicorn-served gateways.
"""

from __future__ import annotations

import pytest

from app import create_app
from app.config import Config
from app.runtime.swarm.provider import SwarmProvider
from tests.gateway import AUTH, PASSWORD, USER, Gateway
from tests.swarm import (  # noqa: F401 - fixtures for the tests of this folder
    docker_api,
    of_watchdog_image,
    session_cleanup,
    swarm_cleanup,
    watchdog_image,
)


@pytest.fixture
def provider(docker_api) -> SwarmProvider:  # noqa: F811 - the imported fixture
    return SwarmProvider(Config())


@pytest.fixture
def client(provider):
    app = create_app(Config(basic_auth_user=USER, basic_auth_password=PASSWORD), provider)
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
