"""Fixtures for tests against the real Docker Swarm.

Every object a test creates carries the run's unique prefix: ``name()`` for objects of one test,
which ``swarm_cleanup`` removes after each test, ``shared_name()`` for objects a module shares,
removed when the session ends. Both run whether the tests passed or not. Docker being unreachable is a
failure, never a skip: an integration suite that silently skips proves nothing.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import docker
import pytest

from app import create_app
from app.config import Config
from app.swarm.provider import DOCKER_API_VERSION, SwarmProvider
from tests.gateway import AUTH, PASSWORD, ROOT, USER, Gateway, call  # noqa: F401 - re-exported for the tests

# The test function images, on the real watchdogs (images/watchdog/build.sh names them).
CLASSIC_IMAGE = "faas-test/classic-watchdog:latest"
OF_WATCHDOG_IMAGE = "faas-test/of-watchdog:latest"
# The real OpenFaaS binaries the build takes, beside the repository.
SHARED_BIN = ROOT.parent / "shared" / "bin"
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


@pytest.fixture
def provider(docker_api) -> SwarmProvider:
    return SwarmProvider(Config())


@pytest.fixture
def client(provider):
    app = create_app(Config(basic_auth_user=USER, basic_auth_password=PASSWORD), provider)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
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


@pytest.fixture(scope="module")
def start_gateway(docker_api):
    """Start gunicorn gateways with extra environment variables; all are stopped afterwards."""
    started: list[Gateway] = []

    def start(**env: str) -> Gateway:
        gateway = Gateway(**env)
        started.append(gateway)
        return gateway.wait_ready()

    yield start
    for gateway in started:
        gateway.stop()
