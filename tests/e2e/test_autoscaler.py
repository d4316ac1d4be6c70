"""The built-in autoscaler on the stack from `make up`, under real, bounded load through nginx.

The stack runs with the defaults (autoscaler on, 5 s rounds, 30 s stabilization). Load comes
from threads on this host, to functions this module deploys, and stops by itself.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

from harness import basic_auth
from tests.e2e.stack import function_containers, gateway_log
from tests.gateway import call
from tests.swarm import name
from tests.waiting import wait_for

AT_MOST_SECONDS = 120  # no load runs longer, whatever happens to the test


def _auth(stack) -> dict[str, str]:
    return basic_auth(stack.user, stack.password)


def _deploy(stack, suffix: str, image: str, labels: dict[str, str], handler: str = "echo ok") -> str:
    """Deploy a function (removed after the test) and wait until it is available."""
    fn = name(suffix)
    body = {"service": fn, "image": image, "envVars": {"handler": handler}, "labels": labels}
    status, text, _ = call(f"{stack.url}/system/functions", "POST", body, _auth(stack))
    assert status == 202, text
    wait_for(lambda: _status(stack, fn)["availableReplicas"] >= 1, timeout=90, what=f"{fn} to be available")
    return fn


def _status(stack, fn: str) -> dict:
    status, body, _ = call(f"{stack.url}/system/function/{fn}", headers=_auth(stack))
    assert status == 200, body
    return json.loads(body)


def _replicas(stack, fn: str) -> int:
    return _status(stack, fn)["replicas"]


def _invoke(stack, fn: str) -> int:
    """One call on a new connection (no keep-alive, as the OpenFaaS conformance load)."""
    parts = urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", f"/function/{fn}", body=b"x")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@contextmanager
def load(stack, fn: str, clients: int, per_second: float | None):
    """``clients`` threads calling ``fn``, each ``per_second`` times a second (None: back to
    back) until the block ends or AT_MOST_SECONDS pass; yields the list of statuses seen."""
    stop = threading.Event()
    statuses: list[int] = []

    def client() -> None:
        started = time.monotonic()
        sent = 0
        while not stop.is_set() and time.monotonic() - started < AT_MOST_SECONDS:
            statuses.append(_invoke(stack, fn))
            sent += 1
            if per_second:
                stop.wait(max(0.0, started + sent / per_second - time.monotonic()))  # pacing

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=40)


def _metric(stack, name: str, fn: str) -> list[str]:
    status, body, _ = call(f"{stack.url}/metrics", headers=_auth(stack))
    assert status == 200
    return [line for line in body.decode().splitlines() if line.startswith(name) and f'function_name="{fn}"' in line]


def test_ten_calls_a_second_take_a_function_to_its_maximum_and_back(stack, watchdog_image):
    fn = _deploy(stack, "rps", watchdog_image, {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "2"})
    with load(stack, fn, clients=2, per_second=5) as statuses:
        wait_for(lambda: _replicas(stack, fn) == 2, timeout=30, interval=1, what=f"{fn} to scale to 2 under load")
    assert statuses and set(statuses) == {200}
    wait_for(lambda: _replicas(stack, fn) == 1, timeout=60, interval=1, what=f"{fn} to scale back to 1 after the load")
    logs = gateway_log(stack)
    assert f"autoscaler: {fn} from 1 to 2 replicas: load above target (rps load" in logs
    assert f"autoscaler: {fn} from 2 to 1 replicas: load below target for 30s" in logs
    decisions = _metric(stack, "gateway_autoscaler_decisions_total", fn)
    assert any('direction="up"' in line and line.endswith(" 1.0") for line in decisions), decisions
    assert any('direction="down"' in line and line.endswith(" 1.0") for line in decisions), decisions
    assert _metric(stack, "gateway_autoscaler_load", fn) and _metric(stack, "gateway_autoscaler_desired_replicas", fn)


def test_capacity_scales_a_slow_function_by_calls_in_flight(stack, watchdog_image):
    labels = {"com.openfaas.scale.type": "capacity", "com.openfaas.scale.target": "2", "com.openfaas.scale.max": "3"}
    fn = _deploy(stack, "capacity", watchdog_image, labels, handler="sleep 1; echo ok")
    # Four clients back to back on a one-second function: four calls in flight.
    with load(stack, fn, clients=4, per_second=None) as statuses:
        wait_for(lambda: _replicas(stack, fn) == 3, timeout=45, interval=1, what=f"{fn} to scale to 3 by capacity")
    assert statuses and set(statuses) == {200}


def test_an_idle_function_goes_to_zero_and_a_call_wakes_it(stack, watchdog_image):
    labels = {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "10s"}
    fn = _deploy(stack, "idle", watchdog_image, labels)
    wait_for(lambda: _replicas(stack, fn) == 0, timeout=60, interval=1, what=f"idle {fn} to go to zero")
    assert f"autoscaler: {fn} from 1 to 0 replicas: idle for" in gateway_log(stack)
    # Until its last task has stopped, a call may still reach it (and need no wake).
    wait_for(lambda: not function_containers(fn), timeout=60, interval=1, what=f"{fn}'s last container to stop")
    assert _invoke(stack, fn) == 200  # scale from zero
    assert _replicas(stack, fn) >= 1


def test_min_equal_to_max_holds_under_load(stack, watchdog_image):
    fn = _deploy(stack, "fixed", watchdog_image, {"com.openfaas.scale.min": "2", "com.openfaas.scale.max": "2"})
    wait_for(lambda: _status(stack, fn)["availableReplicas"] == 2, timeout=90, what=f"{fn} to have 2 replicas")
    seen = []
    with load(stack, fn, clients=2, per_second=10):

        def measured_under_load() -> bool:
            seen.append(_replicas(stack, fn))
            loads = _metric(stack, "gateway_autoscaler_load", fn)
            return bool(loads) and float(loads[0].split()[-1]) > 9  # would ask for 3 replicas

        wait_for(measured_under_load, timeout=45, interval=1, what=f"the autoscaler to measure {fn}'s load")
        # Three more of the autoscaler's rounds under that load, sampled every second.
        for _ in range(15):
            seen.append(_replicas(stack, fn))
            time.sleep(1)  # a sampling interval, not a wait for something
    assert set(seen) == {2}
