"""Fixtures for unit tests: the real Flask app over the real Swarm runtime over an in-memory Docker.

Only the Docker Engine is faked (``tests.fakedocker``), so what the gateway decides (ownership,
secret versions, not found and conflicts, replica counts) is the adapter's own code.

Where a unit test goes:

- The tests of a module of app/ are in ``test_<module>.py``, named after the module alone (no two
  modules of app/ share a name): app/domain/names.py in test_names.py, app/runtime/swarm/specs.py
  in test_specs.py. Blueprints too, whose tests go through the Flask client:
  app/web/blueprints/functions.py in test_functions.py. A test belongs to the module whose
  behaviour it checks, whichever way it reaches it; the package app/ (create_app) is test_app.py,
  and app/queue/, one suite run against each backend, test_queue.py.
- A module's examples and its properties (hypothesis) share its file. Each property states a rule
  of the contract or of the module's docstring and checks it against generated inputs, most often
  with an oracle written from the rule's wording; its ``@example`` inputs are the defects it
  found, kept as regressions.
- What is not a module of app/ has a file named after it: test_deploy.py and test_nginx_routes.py
  (deploy/), test_apt.py and test_base_images.py (scripts/), test_gunicorn_conf.py,
  test_openapi.py (app/openapi.yaml), test_suite_policy.py (tests/conftest.py), and
  test_go_clients.py (what Go clients send, on every route). test_namespaces.py holds the
  namespace routes and what namespaces change on the others.
- Fixtures are here; the constants and pure functions that several files use are in helpers.py
  (and the Swarm adapter's in tests/fakes.py). No test module imports another, or this file.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import pytest

from app import create_app
from app.config import Config
from app.dataplane.upstreams import Upstreams
from app.domain.models import FunctionDeployment
from app.queue import open_queue
from app.runtime.interfaces import Runtime
from app.runtime.swarm.assembly import swarm_runtime
from app.web.state import parts_of
from tests.fakedocker import FakeDocker
from tests.fakes import FakeLogSource, fake_runtime
from tests.queueing import RedisServer
from tests.unit.helpers import AUTH, PASSWORD, USER, deployment
from tests.upstream import Echo, Flaky, Lookup, Receiver, serve


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A redis-server of the tests' own on a loopback port (the queue and the autoscaler's lease)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def upstream():
    """The port of a loopback server that answers as a function does (tests.upstream.Echo)."""
    with serve(Echo) as port:
        yield port


@pytest.fixture
def proxy_app(upstream):
    """A client of an app whose ``echo`` answers from ``upstream`` and scales from zero, with the
    runtime and the scale calls it made: (client, runtime, scales)."""
    runtime = fake_runtime()
    scales = []
    original = runtime.functions.scale

    def counting_scale(name, replicas, namespace=None):
        scales.append((name, replicas))
        return original(name, replicas, namespace)

    runtime.functions.scale = counting_scale
    upstreams = Upstreams(
        runtime.functions, scale_from_zero=True, wait_timeout=3, lookup=Lookup(runtime.functions), port=upstream
    )
    config = Config(basic_auth=False, upstream_timeout=1, forwarded_hops=1)
    app = create_app(config, runtime, upstreams)
    client = app.test_client()
    client.post("/system/functions", json=deployment("echo"))
    return client, runtime, scales


@pytest.fixture
def setup(tmp_path):
    """An app over a SQLite queue whose ``echo`` answers 503 twice per call (tests.upstream.Flaky),
    and a callback receiver (tests.upstream.Receiver): (client, worker not started, queue, callback URL)."""
    Receiver.received, Receiver.failing, Flaky.retry_after = [], False, None
    with serve(Flaky) as function_port, serve(Receiver) as receiver_port:
        runtime = fake_runtime()
        upstreams = Upstreams(
            runtime.functions, scale_from_zero=True, wait_timeout=2, lookup=Lookup(runtime.functions), port=function_port
        )
        queue = open_queue(f"sqlite:///{tmp_path}/queue.db")
        config = Config(basic_auth=False, async_max_attempts=3)
        app = create_app(config, runtime, upstreams, queue)
        worker = parts_of(app).async_worker
        worker.settings = dataclasses.replace(
            worker.settings, retry=dataclasses.replace(worker.settings.retry, min_wait=0.05)
        )
        client = app.test_client()
        client.post("/system/functions", json=deployment("echo"))
        yield client, worker, queue, f"http://127.0.0.1:{receiver_port}/done"
        worker.stop()


@pytest.fixture
def echo(runtime):
    """A function named echo, deployed through the runtime; its name."""
    runtime.functions.deploy(FunctionDeployment(service="echo", image="docker.io/functions/alpine:latest"))
    return "echo"
