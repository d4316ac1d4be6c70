"""The built-in autoscaler (app.background.autoscaler): its rounds over a scripted load (its rule:
test_scaling.py; its labels: test_models.py)."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from app import metrics
from app.background.autoscaler import Autoscaler
from app.config import DEFAULT_NAMESPACE
from app.domain.models import FunctionStatus, ReplicaStats
from app.domain.names import function_reference, split_reference
from app.errors import BackendUnavailable
from tests.waiting import wait_for


class Cluster:
    """Functions the autoscaler sees: a stand-in answering like the runtime's Functions and Replicas. Functions
    are kept by reference: ``name`` in the default namespace, ``name.namespace`` elsewhere."""

    def __init__(self, **functions: tuple[dict[str, str], int]):
        self.functions = {name: {"labels": labels, "replicas": replicas} for name, (labels, replicas) in functions.items()}
        self.cpu: dict[str, dict[str, float]] = {}
        self.scaled: list[tuple[str, int]] = []
        self.down = False

    def list_functions(self, available: bool = True) -> list[FunctionStatus]:
        if self.down:
            raise BackendUnavailable("Docker is unreachable; could not list services.")
        return [
            FunctionStatus(*_split(reference), fn["replicas"], fn["replicas"], labels=fn["labels"])
            for reference, fn in self.functions.items()
        ]

    def scale(self, name: str, replicas: int, namespace: str | None = None) -> int:
        reference = function_reference(name, namespace or DEFAULT_NAMESPACE, DEFAULT_NAMESPACE)
        self.functions[reference]["replicas"] = replicas
        self.scaled.append((reference, replicas))
        return replicas

    def replica_stats(self, name: str, namespace: str | None = None) -> list[ReplicaStats]:
        reference = function_reference(name, namespace or DEFAULT_NAMESPACE, DEFAULT_NAMESPACE)
        return [
            ReplicaStats(name, namespace or DEFAULT_NAMESPACE, replica, used, 0)
            for replica, used in self.cpu.get(reference, {}).items()
        ]


def _split(reference: str) -> tuple[str, str, str]:
    """(name, image, namespace) of a FunctionStatus for ``reference``."""
    name, namespace = split_reference(reference)
    return name, "img", namespace or DEFAULT_NAMESPACE


class Load:
    """The counts the gateway keeps, advanced by hand, and a clock that moves with them."""

    def __init__(self):
        self.now = 1000.0
        self.calls: dict[str, tuple[int, float]] = {}

    def run(self, autoscaler: Autoscaler, seconds: float, **rates: tuple[float, float]) -> None:
        """``seconds`` of rounds, each function getting ``(calls per second, seconds per call)``."""
        for _ in range(int(seconds / autoscaler.interval)):
            self.now += autoscaler.interval
            for name, (rate, duration) in rates.items():
                calls, busy = self.calls.get(name, (0, 0.0))
                n = round(rate * autoscaler.interval)
                self.calls[name] = (calls + n, busy + n * duration)
            autoscaler.round()


class AlwaysLead:
    def hold(self) -> bool:
        return True

    def release(self) -> None:
        pass


def autoscaler_over(cluster: Cluster, load: Load) -> Autoscaler:
    return Autoscaler(cluster, cluster, AlwaysLead(), interval=5, stabilization=30, namespace=DEFAULT_NAMESPACE,
                      totals=lambda: dict(load.calls), clock=lambda: load.now)


def test_ten_calls_a_second_take_min1_max2_to_two_and_back_to_one():
    cluster, load = Cluster(fn=({"com.openfaas.scale.max": "2"}, 1)), Load()
    autoscaler = autoscaler_over(cluster, load)
    load.run(autoscaler, 60)  # idle: settles at one
    load.run(autoscaler, 15, fn=(10, 0.01))
    assert cluster.scaled == [("fn", 2)]
    load.run(autoscaler, 60, fn=(10, 0.01))
    assert cluster.scaled == [("fn", 2)]  # steady under steady load
    load.run(autoscaler, 25)
    assert cluster.functions["fn"]["replicas"] == 2  # the window still remembers the load
    load.run(autoscaler, 30)
    assert cluster.scaled == [("fn", 2), ("fn", 1)]


def test_a_namespace_is_scaled_by_its_own_load():
    """The same name in two namespaces: the load counted under ``fn.team-a`` (the metrics'
    function_name) scales team-a's function, not the default namespace's ``fn``."""
    cluster, load = Cluster(fn=({"com.openfaas.scale.max": "2"}, 1)), Load()
    cluster.functions["fn.team-a"] = {"labels": {"com.openfaas.scale.max": "2"}, "replicas": 1}
    autoscaler = autoscaler_over(cluster, load)
    load.run(autoscaler, 15, **{"fn.team-a": (10, 0.01)})
    assert cluster.scaled == [("fn.team-a", 2)]


def test_capacity_counts_calls_in_flight():
    cluster, load = Cluster(slow=({"com.openfaas.scale.type": "capacity", "com.openfaas.scale.target": "2"}, 1)), Load()
    autoscaler = autoscaler_over(cluster, load)
    load.run(autoscaler, 10, slow=(4, 1.0))  # 4 calls a second taking 1 s each: 4 in flight
    assert cluster.scaled == [("slow", 3)]  # ceil(4 / (2 x 0.9))


def test_cpu_from_the_growth_of_each_replicas_counter():
    cluster, load = Cluster(busy=({"com.openfaas.scale.type": "cpu"}, 2)), Load()
    autoscaler = autoscaler_over(cluster, load)
    for used in (0.0, 8.0):  # one replica measured, 8 CPU seconds in 5 s: 1600 millicores each
        cluster.cpu["busy"] = {"task-a": used}
        load.run(autoscaler, 5)
    assert cluster.scaled == [("busy", 5)]  # 2 replicas x 1600 = 3200 millicores / 720


def test_idle_function_goes_to_zero_and_a_wake_restarts_the_clock():
    labels = {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "30s"}
    cluster, load = Cluster(nap=(labels, 1)), Load()
    autoscaler = autoscaler_over(cluster, load)
    load.run(autoscaler, 20)
    load.run(autoscaler, 5, nap=(1, 0.01))  # a call: the idle clock starts again
    load.run(autoscaler, 25)
    assert cluster.scaled == []
    load.run(autoscaler, 10)
    assert cluster.scaled == [("nap", 0)]
    load.run(autoscaler, 60)
    assert cluster.scaled == [("nap", 0)]  # asleep is left alone
    cluster.functions["nap"]["replicas"] = 1  # woken by a call's scale from zero, or by hand
    load.run(autoscaler, 25)
    assert cluster.scaled == [("nap", 0)]
    load.run(autoscaler, 10)
    assert cluster.scaled == [("nap", 0), ("nap", 0)]


def test_a_round_with_docker_away_is_skipped_and_the_next_one_works(caplog):
    cluster, load = Cluster(fn=({}, 1)), Load()
    autoscaler = autoscaler_over(cluster, load)
    cluster.down = True
    with pytest.raises(BackendUnavailable):
        autoscaler.round()
    cluster.down = False
    load.run(autoscaler, 10, fn=(20, 0.01))
    assert cluster.scaled == [("fn", 5)]


class CountingLock(AlwaysLead):
    def __init__(self):
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()


def test_the_background_loop_outlives_docker_being_away_and_releases_the_lead_when_stopped(caplog):
    cluster = Cluster(fn=({}, 1))
    cluster.down = True
    lock = CountingLock()
    # 1,000 calls a second by the real clock: ten times what the maximum needs, so however late a
    # round reads the clock after the counts (a busy machine), the first decision is the maximum.
    autoscaler = Autoscaler(cluster, cluster, lock, interval=0.01, stabilization=30, namespace=DEFAULT_NAMESPACE,
                            totals=lambda: {"fn": (int(time.monotonic() * 1000), 0.0)})
    autoscaler.start()
    try:
        wait_until(lambda: "autoscaler round skipped: Docker is unreachable" in caplog.text)
        cluster.down = False
        wait_until(lambda: cluster.scaled)
        assert cluster.scaled[0] == ("fn", 20)
    finally:
        autoscaler.stop()
    assert lock.released.wait(5)


wait_until = functools.partial(wait_for, timeout=5, interval=0.01)


def test_functions_with_unusable_labels_and_removed_functions_are_skipped():
    cluster, load = Cluster(odd=({"com.openfaas.scale.type": "memory"}, 1), fn=({}, 1)), Load()
    autoscaler = autoscaler_over(cluster, load)
    load.run(autoscaler, 10, odd=(100, 0.01), fn=(100, 0.01))
    assert cluster.scaled == [("fn", 20)]
    del cluster.functions["fn"]
    load.run(autoscaler, 10)
    assert cluster.scaled == [("fn", 20)]


def test_the_metrics_show_each_rounds_load_and_are_left_alone_while_it_stays(monkeypatch):
    recorded = []
    monkeypatch.setattr(metrics, "record_autoscaling", lambda *args: recorded.append(args))
    cluster, load = Cluster(fn=({"com.openfaas.scale.max": "4"}, 1)), Load()
    autoscaler = autoscaler_over(cluster, load)
    load.run(autoscaler, 30)  # idle: the first round takes a sample, the others measure 0
    assert recorded == [("fn", "rps", 0.0, 1)]
    load.run(autoscaler, 15, fn=(2, 0.01))
    assert recorded[-1] == ("fn", "rps", 2.0, 1)
    # Set once more when the load moves back, and not again while it stays there.
    load.run(autoscaler, 60)
    assert [load for _, _, load, _ in recorded].count(0.0) == 2 and recorded[-1][2] == 0.0
