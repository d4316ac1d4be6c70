"""The readiness prober and its view (app.dataplane.readiness), with the runtime and the probe
itself faked; the probes over real HTTP are tested against a local server, and on a real Swarm
in tests/e2e/test_rollout.py."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import socket
import threading

import pytest

from app.dataplane.readiness import HEARTBEAT, STALE, KeptAliveProbes, ReadinessProber, ReadinessView, http_probe
from app.dataplane.upstreams import Upstreams
from app.domain.models import FunctionEndpoints, TaskEndpoint
from app.domain.probes import READY_PREFIX, Probe
from app.errors import Conflict


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


class Holder:
    def hold(self):
        return True

    def release(self):
        pass


class FakeFunctions:
    """The runtime's Functions, as far as the prober uses them."""

    def __init__(self, *functions: FunctionEndpoints):
        self.functions = list(functions)
        self.rolled_back: list[tuple] = []
        self.refuse_rollback = False

    def function_endpoints(self):
        return self.functions

    def roll_back(self, name, namespace, version, reason):
        if self.refuse_rollback:
            raise Conflict("changed")
        self.rolled_back.append((name, namespace, version, reason))

    def function_addresses(self, name, namespace, resolve):
        return ["10.9.9.9"]  # what DNS would say


def function(*tasks, labels=None, can_roll_back=False, updated_at=None, name="echo", namespace="openfaas-fn"):
    return FunctionEndpoints(name, namespace, labels or {}, len(tasks), 7, can_roll_back, updated_at, list(tasks))


def task(number, current=True, draining=False):
    return TaskEndpoint(f"t{number}", f"10.0.0.{number}", current, draining)


@pytest.fixture
def clock():
    return Clock()


def prober(tmp_path, functions, clock, answers):
    """A prober whose probe answers ``answers[address]`` (True when absent) and records calls."""
    probed = []

    def probe(address, port, probe):
        probed.append((address, probe.path))
        return answers.get(address, True)

    made = ReadinessProber(functions, str(tmp_path / "readiness.json"), Holder(), probe=probe, clock=clock,
                           namespace="openfaas-fn")
    return made, ReadinessView(str(tmp_path / "readiness.json"), clock=clock), probed


def test_only_replicas_that_passed_get_calls(tmp_path, clock):
    functions = FakeFunctions(function(task(1), task(2)))
    made, view, probed = prober(tmp_path, functions, clock, {"10.0.0.2": False})
    assert view.addresses("echo") is None and view.availability() is None  # nothing written yet
    made.probe_round()
    assert view.addresses("echo") == ["10.0.0.1"]
    assert view.ready("echo", "t1") is True and view.ready("echo", "t2") is False
    assert view.availability() == {"echo": 1}
    assert view.addresses("other") == [] and view.ready("echo", "t9") is None
    # The readiness and the health probe of each replica, both on the watchdog's health path:
    # one request answers both.
    assert sorted(probed) == [("10.0.0.1", "/_/health"), ("10.0.0.2", "/_/health")]
    made.probe_round()
    assert len(probed) == 2  # not due again yet


def test_probes_wait_for_their_initial_delay_and_period(tmp_path, clock):
    labels = {READY_PREFIX + "initialDelaySeconds": "3", READY_PREFIX + "periodSeconds": "5",
              "com.openfaas.health.http.periodSeconds": "10"}
    made, view, probed = prober(tmp_path, FakeFunctions(function(task(1), labels=labels)), clock, {})
    made.probe_round()
    assert view.addresses("echo") == [] and len(probed) == 1  # only health, which has no delay
    clock.now += 3
    made.probe_round()
    assert view.addresses("echo") == ["10.0.0.1"] and len(probed) == 2
    clock.now += 4.9
    made.probe_round()
    assert len(probed) == 2
    clock.now += 0.1
    made.probe_round()
    assert len(probed) == 3


def test_a_replica_that_fails_health_gets_no_more_calls(tmp_path, clock):
    labels = {"com.openfaas.health.http.path": "/live", "com.openfaas.health.http.failureThreshold": "1"}
    made, view, _ = prober(tmp_path, FakeFunctions(function(task(1), labels=labels)), clock, {})
    made.probe_round()
    assert view.addresses("echo") == ["10.0.0.1"]
    made._probe = lambda address, port, probe: probe.path != "/live"
    clock.now += 2
    made.probe_round()
    assert view.ready("echo", "t1") is False and view.addresses("echo") == []


def test_draining_replicas_are_not_probed_and_not_ready(tmp_path, clock):
    functions = FakeFunctions(function(task(1, current=False, draining=True), task(2)))
    made, view, probed = prober(tmp_path, functions, clock, {})
    made.probe_round()
    assert {address for address, _ in probed} == {"10.0.0.2"}
    assert view.ready("echo", "t1") is False and view.addresses("echo") == ["10.0.0.2"]


def test_a_view_not_rewritten_for_a_while_is_not_trusted(tmp_path, clock):
    made, view, _ = prober(tmp_path, FakeFunctions(function(task(1))), clock, {})
    made.probe_round()
    assert view.fresh
    clock.now += STALE + 0.1
    assert not view.fresh and view.addresses("echo") is None and view.ready("echo", "t1") is None


def test_an_unchanged_view_is_rewritten_only_to_stay_fresh(tmp_path, clock):
    # Each write has every worker read the whole view again.
    functions = FakeFunctions(function(task(1)))
    made, view, _ = prober(tmp_path, functions, clock, {"10.0.0.2": False})

    def written_at() -> float:
        return json.loads((tmp_path / "readiness.json").read_text())["at"]

    made.probe_round()
    first = clock.now
    clock.now += HEARTBEAT / 2
    made.probe_round()
    assert written_at() == first
    clock.now += HEARTBEAT / 2
    made.probe_round()
    assert written_at() == clock.now and view.fresh
    # A change is written at once.
    functions.functions = [function(task(1), task(2))]
    clock.now += 0.1
    made.probe_round()
    assert written_at() == clock.now and view.ready("echo", "t2") is False


def test_names_in_other_namespaces_carry_their_namespace(tmp_path, clock):
    made, view, _ = prober(tmp_path, FakeFunctions(function(task(1), namespace="team-a")), clock, {})
    made.probe_round()
    assert view.addresses("echo.team-a") == ["10.0.0.1"] and view.addresses("echo") == []


def test_an_update_whose_new_replicas_never_get_ready_is_rolled_back_once_given_its_time(tmp_path, clock):
    labels = {READY_PREFIX + "periodSeconds": "1", READY_PREFIX + "failureThreshold": "1"}  # settles in 3 s
    old, new = task(1, current=False), task(2)
    functions = FakeFunctions(function(old, new, labels=labels, can_roll_back=True, updated_at=clock.now))
    made, view, _ = prober(tmp_path, functions, clock, {"10.0.0.2": False})
    made.probe_round()
    assert view.addresses("echo") == ["10.0.0.1"]  # the old version answers meanwhile
    clock.now += 2.9
    made.probe_round()
    assert functions.rolled_back == []
    clock.now += 0.1
    made.probe_round()
    assert functions.rolled_back == [
        ("echo", "openfaas-fn", 7, "no new replica became ready within 3s (readiness probe GET /_/health every 1s)")]


def test_an_update_with_a_ready_replica_is_kept(tmp_path, clock):
    functions = FakeFunctions(function(task(1, current=False), task(2), can_roll_back=True, updated_at=clock.now))
    made, view, _ = prober(tmp_path, functions, clock, {})
    for _ in range(12):
        made.probe_round()
        clock.now += 1
    assert functions.rolled_back == [] and view.addresses("echo") == ["10.0.0.2"]


def test_a_refused_rollback_is_logged_and_probing_goes_on(tmp_path, clock, caplog):
    functions = FakeFunctions(function(task(2), can_roll_back=True, updated_at=clock.now))
    functions.refuse_rollback = True
    made, view, _ = prober(tmp_path, functions, clock, {"10.0.0.2": False})
    made.probe_round()
    clock.now += 20
    made.probe_round()
    assert "rollback of function echo skipped: changed" in caplog.text and view.fresh


def test_a_follower_forgets_what_it_probed(tmp_path, clock):
    made, _, _ = prober(tmp_path, FakeFunctions(function(task(1))), clock, {})
    made.probe_round()
    made._forget()
    assert made._replicas == {}


def test_upstreams_take_the_ready_addresses_and_dns_without_a_view(tmp_path, clock):
    functions = FakeFunctions(function(task(1), task(2)))
    made, view, _ = prober(tmp_path, functions, clock, {"10.0.0.1": False})
    pools = Upstreams(functions, scale_from_zero=False, wait_timeout=1, view=view)
    assert not pools.probing and pools.address("echo") == "10.9.9.9:8080"
    made.probe_round()
    assert pools.probing and pools.address("echo") == "10.0.0.2:8080"
    # A replica that passes is called at once: the view is read at every call, not cached.
    made._probe = lambda address, port, probe: True
    clock.now += 2
    made.probe_round()
    assert {pools.address("echo") for _ in range(4)} == {"10.0.0.1:8080", "10.0.0.2:8080"}
    functions.functions = [dataclasses.replace(functions.functions[0], tasks=[task(1)])]
    made.probe_round()
    assert pools.address("echo") == "10.0.0.1:8080"


class _Answers(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = {"/ok": 200, "/moved": 302, "/sick": 503}.get(self.path, 404)
        if self.path == "/slow":
            threading.Event().wait(1)
            status = 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_http_probe_passes_on_2xx_and_3xx_within_its_timeout():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert http_probe("127.0.0.1", port, Probe("/ok"))
        assert http_probe("127.0.0.1", port, Probe("/moved"))
        assert not http_probe("127.0.0.1", port, Probe("/sick"))
        assert not http_probe("127.0.0.1", port, Probe("/missing"))
        assert not http_probe("127.0.0.1", port, Probe("/slow", timeout=0.2))
    finally:
        server.shutdown()
        server.server_close()
    assert not http_probe("127.0.0.1", port, Probe("/ok"))  # refused


class _KeptAnswers(_Answers):
    """_Answers over HTTP/1.1 kept-alive connections, each one recorded as it opens."""

    protocol_version = "HTTP/1.1"
    opened: list[socket.socket] = []

    def setup(self):
        super().setup()
        self.opened.append(self.connection)


def test_kept_alive_probes_reuse_a_connection_and_replace_one_the_replica_closed():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeptAnswers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port, opened = server.server_address[1], _KeptAnswers.opened
    opened.clear()
    probes = KeptAliveProbes()
    try:
        assert all(probes("127.0.0.1", port, Probe("/ok")) for _ in range(3))
        assert len(opened) == 1
        opened[0].shutdown(socket.SHUT_RDWR)  # as a watchdog closes an idle connection
        assert probes("127.0.0.1", port, Probe("/ok"))
        assert len(opened) == 2
        assert not probes("127.0.0.1", port, Probe("/sick")) and not probes("127.0.0.1", port, Probe("/sick"))
        assert len(opened) == 3  # another path, another connection, kept too
        assert not probes("127.0.0.1", port, Probe("/slow", timeout=0.2))
        assert probes("127.0.0.1", port, Probe("/ok"))
        assert len(opened) == 4  # the slow answer's connection was dropped, the others kept
        probes.retain(set())  # the replica is gone: its connections are closed
        assert probes("127.0.0.1", port, Probe("/ok"))
        assert len(opened) == 5
    finally:
        server.shutdown()
        server.server_close()
        for connection in opened:
            with contextlib.suppress(OSError):  # those the server closed itself
                connection.shutdown(socket.SHUT_RDWR)
    assert not probes("127.0.0.1", port, Probe("/ok"))  # its connection closed, a new one refused
