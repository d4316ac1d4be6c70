"""Task addresses and scale from zero (app.dataplane.upstreams), through calls to /function/: one
scale for concurrent first calls, and none when switched off."""

from __future__ import annotations

import json
import threading
import time

from app import create_app
from app.config import Config
from app.dataplane.readiness import ReadinessView
from app.dataplane.upstreams import WAKE_POLL, Upstreams
from app.web.state import parts_of
from tests.fakes import fake_runtime
from tests.unit.helpers import deployment
from tests.upstream import Lookup


def test_scale_from_zero_scales_once_for_concurrent_first_calls(proxy_app):
    client, runtime, scales = proxy_app
    client.post("/system/scale-function/echo", json={"serviceName": "echo", "replicas": 0})
    parts_of(client.application).forwarder.upstreams.forget("echo")
    calls = 5
    looked_up = threading.Semaphore(0)
    get_function, scale = runtime.functions.get_function, runtime.functions.scale

    def counted_get_function(name, namespace=None):
        looked_up.release()
        return get_function(name, namespace)

    def scale_once_all_have_looked(name, replicas, namespace=None):
        # Every call has found zero replicas, and the scaling one has looked again behind the
        # gate, before the scale lands: they all pile up behind the first.
        for _ in range(calls + 1):
            assert looked_up.acquire(timeout=5), "the calls did not all look the function up"
        return scale(name, replicas, namespace)

    runtime.functions.get_function, runtime.functions.scale = counted_get_function, scale_once_all_have_looked
    statuses = []

    def call():
        statuses.append(client.application.test_client().get("/function/echo").status_code)

    threads = [threading.Thread(target=call) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [201] * calls
    assert scales == [("echo", 0), ("echo", 1)]


def test_scale_from_zero_can_be_switched_off(upstream):
    runtime = fake_runtime()
    upstreams = Upstreams(
        runtime.functions, scale_from_zero=False, wait_timeout=1, lookup=Lookup(runtime.functions), port=upstream
    )
    client = create_app(Config(basic_auth=False), runtime, upstreams).test_client()
    client.post("/system/functions", json=deployment("echo"))
    client.post("/system/scale-function/echo", json={"serviceName": "echo", "replicas": 0})
    response = client.get("/function/echo")
    assert response.status_code == 503 and response.headers["X-OpenFaaS-Internal"] == "proxy"


def cold_echo(tmp_path, upstream, probe, lookup=None, names=("echo",)):
    """A client of an app whose functions ``names`` (answering from ``upstream``) are at zero
    replicas, and whose replicas are probed with ``probe``; the prober runs (its view is fresh)
    but has not seen a new replica yet, so a waking call asks itself. DNS is ``lookup``, or
    answers as soon as a function has a replica."""
    runtime = fake_runtime()
    view = tmp_path / "readiness.json"
    upstreams = Upstreams(runtime.functions, scale_from_zero=True, wait_timeout=5, lookup=lookup or Lookup(runtime.functions),
                          port=upstream, view=ReadinessView(str(view)), probe=probe)
    client = create_app(Config(basic_auth=False), runtime, upstreams).test_client()
    for name in names:
        client.post("/system/functions", json=deployment(name))
        client.post(f"/system/scale-function/{name}", json={"serviceName": name, "replicas": 0})
    view.write_text(json.dumps({"at": time.time(), "functions": {}}))
    return client


def test_a_woken_function_is_called_as_soon_as_its_replica_passes_the_readiness_probe(tmp_path, upstream):
    probed = []

    def probe(address, port, probe):
        probed.append((address, port, probe.path))
        return len(probed) > 1  # the replica refuses the first probe, as one still starting

    client = cold_echo(tmp_path, upstream, probe)
    assert client.get("/function/echo").status_code == 201
    assert probed == [("127.0.0.1", upstream, "/_/health")] * 2


def test_calls_waiting_on_one_cold_function_probe_it_one_at_a_time(tmp_path, upstream):
    probed, first = [], []

    def probe(address, port, probe):
        probed.append(address)
        first.append(time.monotonic())
        return time.monotonic() - first[0] > 0.3  # the replica is starting for a while

    client = cold_echo(tmp_path, upstream, probe)
    statuses = []

    def call():
        statuses.append(client.application.test_client().get("/function/echo").status_code)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [201] * 20
    # About one probe per WAKE_POLL until the replica passed (0.3 s), not one per waiting call.
    assert len(probed) <= 12, len(probed)


def test_calls_waking_different_functions_share_one_dns_question_per_wake_poll(tmp_path, upstream):
    """Docker's DNS forwards a name it does not know yet to the host's resolver: five functions
    woken at once ask it no more often than one does."""
    asked = []

    def lookup(host):
        asked.append(time.monotonic())
        return ["127.0.0.1"] if asked[-1] - asked[0] > 0.3 else []  # the new tasks join the network

    names = [f"fn{index}" for index in range(5)]
    client = cold_echo(tmp_path, upstream, lambda *_: True, lookup, names)
    statuses = []

    def call(name):
        statuses.append(client.application.test_client().get(f"/function/{name}").status_code)

    threads = [threading.Thread(target=call, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [201] * 5
    assert len([at for at in asked if at - asked[0] <= 0.3]) <= 0.3 / WAKE_POLL + 2, len(asked)
