"""The built-in autoscaler: its rule as a table, its labels, and its rounds over a scripted load."""

from __future__ import annotations

import threading
import time

import pytest

from app.background.autoscaler import Autoscaler
from app.config import DEFAULT_NAMESPACE
from app.domain.models import FunctionStatus, ReplicaStats, ScalingPolicy
from app.domain.names import function_reference, split_reference
from app.domain.scaling import autoscale
from app.errors import BackendUnavailable

MIN1_MAX2 = ScalingPolicy.from_labels({"com.openfaas.scale.max": "2"})
DEFAULT = ScalingPolicy()
ZERO = ScalingPolicy.from_labels({"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "60s"})
FIXED = ScalingPolicy.from_labels({"com.openfaas.scale.min": "3", "com.openfaas.scale.max": "3"})


@pytest.mark.parametrize("labels, load, replicas", [
    ({}, 0, 1),  # no load: the minimum, at least one
    ({}, 4.5, 1),  # 5 calls/s x 0.9 per replica
    ({}, 4.51, 2),
    ({}, 10, 3),
    ({}, 1000, 20),  # the default maximum
    ({"com.openfaas.scale.max": "2"}, 10, 2),
    ({"com.openfaas.scale.min": "4"}, 1, 4),
    ({"com.openfaas.scale.min": "0"}, 0, 1),  # load-based, so never zero: idleness is
    ({"com.openfaas.scale.target-proportion": "1"}, 10, 2),
    ({"com.openfaas.scale.target-proportion": "0.5"}, 10, 4),
    ({"com.openfaas.scale.target": "50"}, 100, 3),
    ({"com.openfaas.scale.type": "capacity"}, 9, 1),  # 10 in flight x 0.9
    ({"com.openfaas.scale.type": "capacity"}, 9.5, 2),
    ({"com.openfaas.scale.type": "cpu"}, 720, 1),  # 800 millicores x 0.9
    ({"com.openfaas.scale.type": "cpu"}, 1500, 3),
    ({"com.openfaas.scale.type": "cpu", "com.openfaas.scale.target": "100"}, 1500, 17),
])
def test_replicas_for_load(labels, load, replicas):
    assert ScalingPolicy.from_labels(labels).replicas_for(load) == replicas


@pytest.mark.parametrize("label, value", [
    ("com.openfaas.scale.type", "memory"),
    ("com.openfaas.scale.target", "0"),
    ("com.openfaas.scale.target", "-5"),
    ("com.openfaas.scale.target", "lots"),
    ("com.openfaas.scale.target", "inf"),
    ("com.openfaas.scale.target-proportion", "0"),
    ("com.openfaas.scale.target-proportion", "1.5"),
    ("com.openfaas.scale.target-proportion", "nan"),
    ("com.openfaas.scale.zero-duration", "soon"),
    ("com.openfaas.scale.zero-duration", "-1m"),
])
def test_unusable_labels_are_refused_by_name(label, value):
    with pytest.raises(ValueError, match=label.replace(".", r"\.")):
        ScalingPolicy.from_labels({label: value})


def test_label_defaults_follow_the_type():
    assert (DEFAULT.kind, DEFAULT.target, DEFAULT.target_proportion, DEFAULT.zero_duration) == ("rps", 5, 0.9, 900)
    assert ScalingPolicy.from_labels({"com.openfaas.scale.type": "capacity"}).target == 10
    assert ScalingPolicy.from_labels({"com.openfaas.scale.type": "CPU"}).target == 800
    assert ZERO.zero and ZERO.zero_duration == 60
    assert not FIXED.autoscaled and DEFAULT.autoscaled


WINDOW = 30

# policy, current replicas, asked per round in the window (this round last), watched seconds,
# settled last round, idle seconds -> replicas, settled
RULE = {
    "up at once": (MIN1_MAX2, 1, [1, 2], 5, 1, 0, 2, 2),
    "up at once, before a whole window was watched": (DEFAULT, 1, [3], 0, None, 0, 3, 3),
    "steady": (MIN1_MAX2, 2, [2, 2, 2], 60, 2, 0, 2, 2),
    "down waits while the window still holds more": (MIN1_MAX2, 2, [2, 1, 1], 60, 2, 0, 2, 2),
    "down once the whole window asks for less": (MIN1_MAX2, 2, [1, 1, 1], 60, 2, 0, 1, 1),
    "down to the largest count of the window": (DEFAULT, 5, [3, 2, 2], 60, 5, 0, 3, 3),
    "no down before a whole window was watched": (DEFAULT, 3, [1, 1], 10, None, 0, 3, None),
    "first sight settles without scaling down": (DEFAULT, 5, [1, 1], 60, None, 0, 5, 1),
    "set by hand stays while the load is unchanged": (DEFAULT, 5, [1, 1], 60, 1, 0, 5, 1),
    "set by hand goes when the load falls": (DEFAULT, 5, [2, 2], 60, 3, 0, 2, 2),
    "set by hand below the load goes up": (DEFAULT, 1, [3], 60, 3, 0, 3, 3),
    "above the maximum comes down at once": (MIN1_MAX2, 4, [1], 0, None, 0, 2, None),
    "below the minimum goes up at once": (ScalingPolicy(minimum=3), 1, [3], 0, None, 0, 3, None),
    "asleep stays asleep": (DEFAULT, 0, [1], 60, 1, 0, 0, 1),
    "min == max is left alone under load": (FIXED, 3, [20], 60, 3, 0, 3, 3),
    "min == max is left alone even if set by hand": (FIXED, 1, [20], 60, 3, 0, 1, 3),
    "idle to zero": (ZERO, 2, [1, 1], 120, 1, 60, 0, None),
    "idle, not long enough": (ZERO, 1, [1, 1], 120, 1, 59, 1, 1),
    "idle without scale.zero stays": (DEFAULT, 1, [1], 10_000, 1, 10_000, 1, 1),
}


@pytest.mark.parametrize("case", RULE.values(), ids=RULE.keys())
def test_rule(case):
    policy, current, wanted, watched, settled, idle, replicas, new_settled = case
    decision = autoscale(policy, current, wanted, WINDOW, watched, settled, idle)
    assert (decision.replicas, decision.settled) == (replicas, new_settled)
    assert bool(decision.reason) == (replicas != current)


class Cluster:
    """Functions the autoscaler sees: a stand-in answering like the runtime's Functions and Replicas. Functions
    are kept by reference: ``name`` in the default namespace, ``name.namespace`` elsewhere."""

    def __init__(self, **functions: tuple[dict[str, str], int]):
        self.functions = {name: {"labels": labels, "replicas": replicas} for name, (labels, replicas) in functions.items()}
        self.cpu: dict[str, dict[str, float]] = {}
        self.scaled: list[tuple[str, int]] = []
        self.down = False

    def list_functions(self) -> list[FunctionStatus]:
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
    # 100 calls a second, by the real clock: enough for the maximum once Docker is back.
    autoscaler = Autoscaler(cluster, cluster, lock, interval=0.01, stabilization=30, namespace=DEFAULT_NAMESPACE,
                            totals=lambda: {"fn": (int(time.monotonic() * 100), 0.0)})
    autoscaler.start()
    try:
        wait_until(lambda: "autoscaler round skipped: Docker is unreachable" in caplog.text)
        cluster.down = False
        wait_until(lambda: cluster.scaled)
        assert cluster.scaled[0] == ("fn", 20)
    finally:
        autoscaler.stop()
    assert lock.released.wait(5)


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)  # polling a condition, with a bound


def test_functions_with_unusable_labels_and_removed_functions_are_skipped():
    cluster, load = Cluster(odd=({"com.openfaas.scale.type": "memory"}, 1), fn=({}, 1)), Load()
    autoscaler = autoscaler_over(cluster, load)
    load.run(autoscaler, 10, odd=(100, 0.01), fn=(100, 0.01))
    assert cluster.scaled == [("fn", 20)]
    del cluster.functions["fn"]
    load.run(autoscaler, 10)
    assert cluster.scaled == [("fn", 20)]
