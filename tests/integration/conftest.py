"""Fixtures for tests against the real Docker Swarm.

Every object a test creates carries the run's unique prefix: ``name()`` for objects of one test,
which ``swarm_cleanup`` removes after each test, ``shared_name()`` for objects a module shares,
removed when the session ends. Both run whether the tests passed or not. Docker being unreachable is a
failure, never a skip: an integration suite that silently skips proves nothing.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import json
import time
import urllib.error
import urllib.request
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
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


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


@pytest.fixture(scope="session")
def watchdog_image(docker_api) -> str:
    """The classic-watchdog test image; `make test` builds it, a bare pytest run builds it here."""
    try:
        docker_api.inspect_image(WATCHDOG_IMAGE)
    except docker.errors.ImageNotFound:
        subprocess.run([str(ROOT / "images/watchdog/build.sh"), WATCHDOG_IMAGE], check=True, capture_output=True)
    return WATCHDOG_IMAGE


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gateway:
    """A gunicorn process serving ``wsgi:app`` with gevent workers on a loopback port."""

    def __init__(self, **env: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "basic_auth_user": USER, "basic_auth_password": PASSWORD, **env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{self.port}", "wsgi:app"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> "Gateway":
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2)
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("gunicorn did not start:\n" + self.process.stdout.read().decode(errors="replace"))
                time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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


def call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes, dict]:
    """One HTTP request with the test credentials; returns status, body and headers, also for errors."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={**AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)
