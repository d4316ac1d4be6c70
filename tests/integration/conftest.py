"""Fixtures for tests against the real Docker Swarm.

Every object a test creates carries the run's unique prefix; ``swarm_cleanup`` removes whatever
carries it after each test, whether the test passed or not. Docker being unreachable is a
failure, never a skip: an integration suite that silently skips proves nothing.
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from pathlib import Path

import docker
import pytest

from app import create_app
from app.config import Config
from app.swarm.provider import DOCKER_API_VERSION, SwarmProvider

ROOT = Path(__file__).resolve().parents[2]
WATCHDOG_IMAGE = "faas-test/watchdog:latest"
PREFIX = f"it{uuid.uuid4().hex[:6]}"
USER, PASSWORD = "it-admin", "it-password"


def name(suffix: str) -> str:
    """A Docker-object name unique to this test run."""
    return f"{PREFIX}-{suffix}"


@pytest.fixture(scope="session")
def docker_api() -> docker.APIClient:
    api = docker.APIClient(version=DOCKER_API_VERSION, **docker.utils.kwargs_from_env())
    try:
        swarm = api.info()["Swarm"]
    except Exception as exc:  # noqa: BLE001 - any failure here means the suite cannot run
        pytest.fail(f"Docker is not reachable ({exc}); run scripts/setup-docker.sh", pytrace=False)
    if not swarm.get("ControlAvailable"):
        pytest.fail("this Docker node is not a Swarm manager; run scripts/setup-docker.sh", pytrace=False)
    return api


@pytest.fixture(scope="session")
def watchdog_image(docker_api) -> str:
    """The classic-watchdog test image; `make test` builds it, a bare pytest run builds it here."""
    try:
        docker_api.inspect_image(WATCHDOG_IMAGE)
    except docker.errors.ImageNotFound:
        subprocess.run([str(ROOT / "images/watchdog/build.sh"), WATCHDOG_IMAGE], check=True, capture_output=True)
    return WATCHDOG_IMAGE


def _remove_prefixed(api: docker.APIClient) -> None:
    """Remove every service, secret and network named with this run's prefix."""
    for service in api.services():
        if service["Spec"]["Name"].startswith(PREFIX):
            api.remove_service(service["ID"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        secrets = [s for s in api.secrets() if s["Spec"]["Name"].startswith(PREFIX)]
        for secret in secrets:
            try:
                api.remove_secret(secret["ID"])
            except docker.errors.APIError:
                pass  # still referenced by tasks that are shutting down; try again
        if not secrets:
            break
        time.sleep(0.5)
    for network in api.networks():
        if network["Name"].startswith(PREFIX):
            api.remove_network(network["Id"])


@pytest.fixture(autouse=True)
def swarm_cleanup(docker_api):
    yield
    _remove_prefixed(docker_api)


@pytest.fixture
def provider(docker_api) -> SwarmProvider:
    return SwarmProvider(Config())


@pytest.fixture
def client(provider):
    app = create_app(Config(basic_auth_user=USER, basic_auth_password=PASSWORD), provider)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return client


def wait_for(predicate, timeout: float = 90, interval: float = 0.5, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def wait_available(client, function: str, replicas: int, timeout: float = 90) -> dict:
    """Wait until the gateway reports ``replicas`` available (and desired) replicas."""

    def ready():
        status = client.get(f"/system/function/{function}").get_json()
        return status if status["availableReplicas"] == replicas == status["replicas"] else None

    return wait_for(ready, timeout, what=f"{function} to have {replicas} available replicas")
