"""The real Docker Swarm for integration and end-to-end tests: object names unique to the run,
the test function images, the Engine API client, and the clean-up that removes what a test made.

Every object a test creates carries the run's unique prefix: ``name()`` for objects of one test,
which ``swarm_cleanup`` removes after each test, ``shared_name()`` for objects a module shares,
removed when the session ends. Both run whether the tests passed or not. Docker being unreachable is a
failure, never a skip: an integration suite that silently skips proves nothing.

The fixtures here are made available by the conftest.py of tests/integration and tests/e2e, which
import them; no test module imports another.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import docker
import pytest

from app.runtime.swarm.client import DOCKER_API_VERSION
from tests.gateway import ROOT
from tests.waiting import wait_for

# The test function images, on the real watchdogs (images/watchdog/build.sh names them).
CLASSIC_IMAGE = "faas-test/classic-watchdog:latest"
OF_WATCHDOG_IMAGE = "faas-test/of-watchdog:latest"
PREFIX = f"it{uuid.uuid4().hex[:6]}"


def name(suffix: str) -> str:
    """A Docker-object name unique to this test run, removed after the test."""
    return f"{PREFIX}-{suffix}"


def shared_name(suffix: str) -> str:
    """A Docker-object name unique to this test run, removed at the end of the session."""
    return f"{PREFIX}s-{suffix}"


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


def _test_image(api: docker.APIClient, kind: str, image: str) -> str:
    """``image``, built by images/watchdog/build.sh when missing (`make test` builds both first)."""
    try:
        api.inspect_image(image)
    except docker.errors.ImageNotFound:
        built = subprocess.run([str(ROOT / "images/watchdog/build.sh"), kind, image], capture_output=True, text=True)
        if built.returncode != 0:
            pytest.fail(f"images/watchdog/build.sh {kind} failed:\n{built.stderr}", pytrace=False)
    return image


@pytest.fixture(scope="session")
def watchdog_image(docker_api) -> str:
    """The classic-watchdog image: fprocess runs the shell snippet in the ``handler`` env var
    (default ``cat``) per call, with Http_* variables; an ``envProcess`` replaces it."""
    return _test_image(docker_api, "classic", CLASSIC_IMAGE)


@pytest.fixture(scope="session")
def of_watchdog_image(docker_api) -> str:
    """The of-watchdog image in mode=http: the same ``handler`` convention behind an upstream of
    ours, for what the classic watchdog cannot do: pass HEAD and OPTIONS on, stream bodies."""
    return _test_image(docker_api, "of-watchdog", OF_WATCHDOG_IMAGE)


def _remove_prefixed(api: docker.APIClient, prefix: str) -> None:
    """Remove every service, secret and network whose name starts with ``prefix``."""
    for service in api.services():
        if service["Spec"]["Name"].startswith(prefix):
            api.remove_service(service["ID"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        secrets = [s for s in api.secrets() if s["Spec"]["Name"].startswith(prefix)]
        for secret in secrets:
            try:
                api.remove_secret(secret["ID"])
            except docker.errors.APIError:
                pass  # still referenced by tasks that are shutting down; try again
        if not secrets:
            break
        time.sleep(0.5)
    for network in api.networks():
        if network["Name"].startswith(prefix):
            api.remove_network(network["Id"])


@pytest.fixture(scope="session", autouse=True)
def session_cleanup(docker_api):
    yield
    _remove_prefixed(docker_api, PREFIX)


@pytest.fixture(autouse=True)
def swarm_cleanup(docker_api):
    yield
    _remove_prefixed(docker_api, name(""))


def wait_available(client, function: str, replicas: int, timeout: float = 90) -> dict:
    """Wait until the gateway reports ``replicas`` available (and desired) replicas."""

    def ready():
        status = client.get(f"/system/function/{function}").get_json()
        return status if status["availableReplicas"] == replicas == status["replicas"] else None

    return wait_for(ready, timeout, what=f"{function} to have {replicas} available replicas")
