"""The dashboard's time series: rates, quantiles and CPU from two samples, one consistent series
for every process that reads the file, the hour it keeps, the one sampler its lock elects, and
the API route that serves it."""

from __future__ import annotations

import math

import pytest

from app import metrics
from app.background.timeseries import TimeSeries, quantile
from app.domain.models import FunctionDeployment, Namespace
from app.metrics import CallTotals
from app.runtime.leader import FileLock
from app.web import state
from tests.waiting import wait_for

INF = math.inf


class Script:
    """A clock and call totals the test moves forward."""

    def __init__(self):
        self.now = 1_000_000.0
        self.totals: dict[str, CallTotals] = {}

    def clock(self) -> float:
        return self.now


def series(tmp_path, runtime, script, lock=None, **extra) -> TimeSeries:
    return TimeSeries(
        str(tmp_path / "series.db"), runtime.functions, runtime.replicas, lock or FileLock(str(tmp_path / "series.lock")),
        interval=10, namespace="openfaas-fn", totals=lambda: script.totals, clock=script.clock, **extra,
    )


@pytest.fixture
def script():
    return Script()


@pytest.fixture
def echo(runtime):
    runtime.functions.deploy(FunctionDeployment(service="echo", image="docker.io/functions/alpine:latest"))
    return "echo"


@pytest.mark.parametrize(
    "q, before, after, expected",
    [
        # 10 calls under 0.1 s, 10 more under 1 s: the median is at the top of the first bucket.
        (0.5, {}, {0.1: 10, 1.0: 20, INF: 20}, 0.1),
        (0.25, {}, {0.1: 10, 1.0: 20, INF: 20}, 0.05),
        (0.75, {}, {0.1: 10, 1.0: 20, INF: 20}, 0.55),
        # Only the calls between the two samples count.
        (0.5, {0.1: 10, 1.0: 10, INF: 10}, {0.1: 10, 1.0: 20, INF: 20}, 0.55),
        # A quantile in the open-ended bucket is that bucket's lower bound.
        (0.99, {}, {0.1: 0, 1.0: 1, INF: 100}, 1.0),
        (0.5, {0.1: 3, INF: 3}, {0.1: 3, INF: 3}, None),
        (0.5, {}, {}, None),
    ],
)
def test_quantile_interpolates_in_its_bucket(q, before, after, expected):
    result = quantile(q, before, after)
    assert result == expected if expected is None else result == pytest.approx(expected)


def test_a_point_holds_rates_by_code_latency_replicas_and_cpu(tmp_path, runtime, engine, script, echo):
    container = engine.running_tasks("echo")[0]["Status"]["ContainerStatus"]["ContainerID"]
    sampler = series(tmp_path, runtime, script)
    script.totals = {"echo": CallTotals({"200": 100, "500": 4}, {0.1: 100, 1.0: 104, INF: 104})}
    sampler.sample()
    assert sampler.points("echo") == []  # one sample gives no rate yet
    script.now += 10
    script.totals = {"echo": CallTotals({"200": 150, "500": 6}, {0.1: 150, 1.0: 156, INF: 156})}
    engine.cpu_usage[container] = 2_000_000_000  # 2 CPU seconds in 10 s: 200 millicores
    engine.containers[container]["memory"] = 5_000_000
    sampler.sample()
    [point] = sampler.points("echo")
    assert point["t"] == script.now
    assert point["calls"] == {"200": 5.0, "500": 0.2}
    assert point["p50"] == pytest.approx(0.1 * 26 / 50) and point["p99"] == pytest.approx(0.1 + 0.9 * (51.48 - 50) / 2)
    assert (point["replicas"], point["available"], point["cpu"], point["memory"]) == (1, 1, 200.0, 5_000_000)


def test_cpu_counts_only_replicas_measured_both_times(tmp_path, runtime, engine, script, echo):
    sampler = series(tmp_path, runtime, script)
    sampler.sample()
    runtime.functions.scale("echo", 2)
    old, new = (task["Status"]["ContainerStatus"]["ContainerID"] for task in engine.running_tasks("echo"))
    engine.cpu_usage[old] = 1_000_000_000
    engine.cpu_usage[new] = 9_000_000_000  # used before this gateway first saw it: not in this interval
    script.now += 10
    sampler.sample()
    point = sampler.points("echo")[0]
    assert point["cpu"] == 100.0 and point["memory"] == 2 * engine.containers[old]["memory"]


def test_a_function_without_calls_or_replicas_has_gaps_not_zeros(tmp_path, runtime, script, echo):
    runtime.functions.scale("echo", 0)
    sampler = series(tmp_path, runtime, script)
    sampler.sample()
    script.now += 10
    sampler.sample()
    [point] = sampler.points("echo")
    assert point["calls"] == {} and point["p50"] is None and point["replicas"] == 0
    assert point["cpu"] is None and point["memory"] is None


def test_functions_of_one_name_in_two_namespaces_have_a_series_each(tmp_path, runtime, engine, script, echo):
    runtime.namespaces.create_namespace(Namespace("team-a"))
    runtime.functions.deploy(FunctionDeployment(service="echo", image="docker.io/functions/alpine:latest", namespace="team-a"))
    runtime.functions.scale("echo", 2, "team-a")
    sampler = series(tmp_path, runtime, script)
    # Metrics name the default namespace's function by its bare name, the other as name.namespace.
    script.totals = {"echo": CallTotals({"200": 0}, {INF: 0}), "echo.team-a": CallTotals({"200": 0}, {INF: 0})}
    sampler.sample()
    script.now += 10
    script.totals = {"echo": CallTotals({"200": 10}, {INF: 10}), "echo.team-a": CallTotals({"200": 40}, {INF: 40})}
    sampler.sample()
    [default], [team] = sampler.points("echo"), sampler.points("echo.team-a")
    assert (default["calls"], default["replicas"]) == ({"200": 1.0}, 1)
    assert (team["calls"], team["replicas"]) == ({"200": 4.0}, 2)
    memory = engine.containers[engine.running_tasks("echo")[0]["Status"]["ContainerStatus"]["ContainerID"]]["memory"]
    assert (default["memory"], team["memory"]) == (memory, 2 * memory)


def test_counters_that_went_down_start_again_from_zero(tmp_path, runtime, script, echo):
    sampler = series(tmp_path, runtime, script)
    script.totals = {"echo": CallTotals({"200": 500}, {INF: 500})}
    sampler.sample()
    script.now += 10
    script.totals = {"echo": CallTotals({"200": 30}, {INF: 30})}  # the gateway restarted
    sampler.sample()
    assert sampler.points("echo")[0]["calls"] == {"200": 3.0}


def test_every_process_reads_the_one_series_the_sampler_wrote(tmp_path, runtime, script, echo):
    sampler, reader = series(tmp_path, runtime, script), series(tmp_path, runtime, script)
    for calls in (0, 10, 30):
        script.totals = {"echo": CallTotals({"200": calls}, {INF: calls})}
        sampler.sample()
        script.now += 10
    assert [point["calls"]["200"] for point in reader.points("echo")] == [1.0, 2.0]
    assert reader.points("other") == []


def test_an_hour_is_kept(tmp_path, runtime, script, echo):
    sampler = series(tmp_path, runtime, script, keep=3600)
    for _ in range(400):
        sampler.sample()
        script.now += 10
    points = sampler.points("echo")
    assert len(points) == 360 and points[0]["t"] >= script.now - 3600
    with sampler._connect() as connection:
        assert connection.execute("SELECT COUNT(*) FROM points").fetchone()[0] == 361  # the one at the boundary


def test_only_the_process_holding_the_lock_samples(tmp_path, runtime, echo):
    lock = tmp_path / "series.lock"
    leader = TimeSeries(
        str(tmp_path / "series.db"), runtime.functions, runtime.replicas, FileLock(str(lock)),
        interval=0.05, namespace="openfaas-fn",
    )
    follower_lock = FileLock(str(lock))
    follower = TimeSeries(
        str(tmp_path / "series.db"), runtime.functions, runtime.replicas, follower_lock, interval=0.05, namespace="openfaas-fn"
    )
    assert leader.lock.hold()
    follower.start()
    leader.start()
    try:
        wait_for(lambda: len(follower.points("echo")) >= 3, timeout=10, what="points from the leader")
        assert not follower_lock.hold() and follower._last is None
    finally:
        leader.stop(), follower.stop()


def test_call_totals_sum_codes_and_buckets_per_function():
    metrics.record_invocation("totals-fn", 200, 0.02)
    metrics.record_invocation("totals-fn", 200, 3.0)
    metrics.record_invocation("totals-fn", 502, 0.02)
    totals = metrics.call_totals()["totals-fn"]
    assert totals.by_code == {"200": 2, "502": 1}
    buckets = totals.buckets
    assert (buckets[0.01], buckets[0.025], buckets[2.5], buckets[5.0], buckets[INF]) == (0, 2, 2, 3, 3)


def test_the_series_route_serves_the_points(app, client, echo):
    sampler = state.parts_of(app).time_series
    sampler.sample()
    sampler.sample()
    body = client.get("/system/function/echo/series").get_json()
    assert body["name"] == "echo" and body["interval"] == 10.0
    assert [point["replicas"] for point in body["points"]] == [1]


def test_the_series_route_serves_the_namespace_asked_for(app, client, runtime, echo):
    runtime.namespaces.create_namespace(Namespace("team-a"))
    runtime.functions.deploy(FunctionDeployment(service="echo", image="docker.io/functions/alpine:latest", namespace="team-a"))
    runtime.functions.scale("echo", 3, "team-a")
    sampler = state.parts_of(app).time_series
    sampler.sample()
    sampler.sample()
    body = client.get("/system/function/echo/series?namespace=team-a").get_json()
    assert [point["replicas"] for point in body["points"]] == [3]


@pytest.mark.parametrize(
    "path, status",
    [
        ("/system/function/ghost/series", 404),
        ("/system/function/Bad_Name/series", 400),
        ("/system/function/echo/series?namespace=no-such", 400),
        ("/system/function/echo/series?namespace=Bad_NS", 400),
    ],
)
def test_the_series_route_refuses_what_it_cannot_serve(client, echo, path, status):
    response = client.get(path)
    assert response.status_code == status and response.mimetype == "text/plain"
