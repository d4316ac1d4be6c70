"""Prometheus metrics (app.metrics): names and labels in the exposition, invocation counts and call
totals, request metrics by route, and the sums across worker processes in multiprocess mode.

The in-process registry is shared by the whole test session, so each test uses function names of
its own and compares counts before and after.
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
from flask import Flask, abort

from app import metrics
from tests.unit.helpers import samples, unique

INF = math.inf


def rendered() -> dict[tuple, float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    return samples(body.decode())


def test_invocations_are_exposed_by_function_and_code():
    echo, other = unique("echo"), unique("other")
    metrics.record_invocation(echo, 200, 0.02)
    metrics.record_invocation(echo, 200, 0.3)
    metrics.record_invocation(echo, 500, 45.0)
    metrics.record_invocation(other, 202, 0.001)
    exposed = rendered()
    assert exposed[("gateway_function_invocation_total", ("code", "200"), ("function_name", echo))] == 2
    assert exposed[("gateway_function_invocation_total", ("code", "500"), ("function_name", echo))] == 1
    assert exposed[("gateway_functions_seconds_count", ("code", "200"), ("function_name", echo))] == 2
    assert exposed[("gateway_functions_seconds_sum", ("code", "200"), ("function_name", echo))] == pytest.approx(0.32)
    # A slow call lands in the buckets sized for the upstream timeout.
    assert exposed[("gateway_functions_seconds_bucket", ("code", "500"), ("function_name", echo), ("le", "30.0"))] == 0
    assert exposed[("gateway_functions_seconds_bucket", ("code", "500"), ("function_name", echo), ("le", "60.0"))] == 1
    counts = metrics.invocation_counts()
    assert (counts[echo], counts[other]) == (3, 1)


def _buckets(*seconds: float) -> list[int]:
    """Calls per bucket of FUNCTION_BUCKETS (then +Inf) for calls of these durations."""
    bounds = (*metrics.FUNCTION_BUCKETS, INF)
    return [sum(1 for value in seconds if value <= bound and (index == 0 or value > bounds[index - 1]))
            for index, bound in enumerate(bounds)]


def test_sums_of_calls_are_recorded_as_each_call_would_be():
    # nginx sends sums of the calls it routed: they must expose what the calls one by one would.
    one_by_one, summed = unique("one-by-one"), unique("summed")
    calls = [0.001, 0.005, 0.006, 0.3, 0.3, 2.0, 75.0]
    for seconds in calls:
        metrics.record_invocation(one_by_one, 200, seconds)
    metrics.record_invocations(summed, 200, len(calls), sum(calls), _buckets(*calls))
    exposed = rendered()

    def of(function: str) -> dict[tuple, float]:
        return {tuple(label for label in key if label != ("function_name", function)): value
                for key, value in exposed.items() if ("function_name", function) in key and not key[0].endswith("_created")}

    assert len(of(one_by_one)) == 17 and of(one_by_one) == pytest.approx(of(summed))
    assert metrics.invocation_counts()[summed] == len(calls)


@pytest.mark.parametrize("calls, buckets", [(3, [1, 1]), (3, [1] * 13 + [0]), (2, [3, -1] + [0] * 12)])
def test_sums_whose_buckets_do_not_add_up_are_refused(calls, buckets):
    with pytest.raises(ValueError):
        metrics.record_invocations(unique("bad"), 200, calls, 1.0, buckets)


def test_gauges_hold_the_last_value_set():
    echo = unique("echo")
    metrics.set_replicas(echo, 5)
    metrics.set_replicas(echo, 2)
    metrics.set_async_calls({"queued": 4, "running": 2, "retrying": 1, "succeeded": 9, "failed": 0, "dead": 3,
                             "cancelled": 0})
    exposed = rendered()
    assert exposed[("gateway_service_count", ("function_name", echo))] == 2
    assert exposed[("gateway_async_queue_depth",)] == 7
    assert exposed[("gateway_async_dead_letters",)] == 3
    assert exposed[("gateway_async_calls", ("state", "succeeded"))] == 9


def test_functions_never_called_have_no_count():
    assert unique("idle") not in metrics.invocation_counts()


def test_requests_are_counted_by_route_template():
    app = Flask(__name__)
    metrics.instrument(app)
    route = f"/{unique('probe')}/<name>"

    @app.route(route, methods=["GET", "POST"])
    def probe(name):
        if name == "fail":
            return "no", 503
        return "ok"

    prefix = route.split("/")[1]
    before = rendered()
    client = app.test_client()
    client.get(f"/{prefix}/a")
    client.get(f"/{prefix}/b")
    client.post(f"/{prefix}/fail")
    client.open(f"/{prefix}/a", method="BREW")
    client.get(f"/{prefix}-missing/a")
    after = rendered()

    def delta(*key):
        return after.get(key, 0) - before.get(key, 0)

    total = "gateway_provider_requests_total"
    assert delta(total, ("code", "200"), ("method", "GET"), ("route", route)) == 2
    assert delta(total, ("code", "503"), ("method", "POST"), ("route", route)) == 1
    # Werkzeug's 405 still knows no rule; strange methods share one label value.
    assert delta(total, ("code", "405"), ("method", "other"), ("route", "unmatched")) == 1
    assert delta(total, ("code", "404"), ("method", "GET"), ("route", "unmatched")) == 1
    assert delta("gateway_provider_request_seconds_count", ("method", "GET"), ("route", route)) == 2


def test_requests_refused_by_an_earlier_hook_are_counted():
    app = Flask(__name__)
    route = f"/{unique('guarded')}"

    @app.before_request
    def refuse():
        # Like basic auth, a hook registered before instrument() that answers for the view.
        abort(401)

    app.add_url_rule(route, "guarded", lambda: "never")
    metrics.instrument(app)
    assert app.test_client().get(route).status_code == 401
    assert rendered()[("gateway_provider_requests_total", ("code", "401"), ("method", "GET"), ("route", route))] == 1


# Multiprocess mode: each function below runs in a process of its own, started with 'spawn' and
# with PROMETHEUS_MULTIPROC_DIR in its environment from the start, as a gunicorn worker has it.


def _worker(calls: list[tuple[str, int]], replicas: int) -> None:
    for function, code in calls:
        metrics.record_invocation(function, code, 0.05)
    # And sums, as nginx sends them (app.dataplane.calllog).
    metrics.record_invocations("echo", 200, 2, 0.1, _buckets(0.05, 0.05))
    # Another counter of the function: no call.
    metrics.record_callback_failed("echo")
    metrics.set_replicas("echo", replicas)
    metrics.set_async_calls({"queued": replicas, "running": 0, "retrying": 0, "succeeded": 0, "failed": 0, "dead": 0,
                             "cancelled": 0})


def _scrape() -> tuple[dict[str, int], str]:
    return metrics.invocation_counts(), metrics.render()[0].decode()


def test_counts_are_summed_across_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    spawn = multiprocessing.get_context("spawn")
    workers = [
        ([("echo", 200), ("echo", 200), ("echo", 500)], 5),
        ([("echo", 200), ("other", 202)], 2),
    ]
    for calls, replicas in workers:
        # One after the other, so the second worker's gauges are the most recent.
        process = spawn.Process(target=_worker, args=(calls, replicas))
        process.start()
        process.join(60)
        assert process.exitcode == 0
    assert len(list(tmp_path.glob("counter_*.db"))) == 2

    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        counts, text = pool.submit(_scrape).result(60)
        assert counts == {"echo": 8, "other": 1}
        # The same process asks again after another call: the merge it kept is not the answer.
        process = spawn.Process(target=_worker, args=([("other", 200)], 2))
        process.start()
        process.join(60)
        assert process.exitcode == 0
        assert pool.submit(_scrape).result(60)[0] == {"echo": 10, "other": 2}
    exposed = samples(text)
    assert exposed[("gateway_function_invocation_total", ("code", "200"), ("function_name", "echo"))] == 7
    assert exposed[("gateway_function_invocation_total", ("code", "500"), ("function_name", "echo"))] == 1
    assert exposed[("gateway_functions_seconds_count", ("code", "200"), ("function_name", "echo"))] == 7
    assert exposed[("gateway_functions_seconds_bucket", ("code", "200"), ("function_name", "echo"),
                    ("le", "0.05"))] == 7
    assert exposed[("gateway_service_count", ("function_name", "echo"))] == 2
    assert exposed[("gateway_async_queue_depth",)] == 2


def test_call_totals_sum_codes_and_buckets_per_function():
    metrics.record_invocation("totals-fn", 200, 0.02)
    metrics.record_invocation("totals-fn", 200, 3.0)
    metrics.record_invocation("totals-fn", 502, 0.02)
    totals = metrics.call_totals()["totals-fn"]
    assert totals.by_code == {"200": 2, "502": 1}
    buckets = totals.buckets
    assert (buckets[0.01], buckets[0.025], buckets[2.5], buckets[5.0], buckets[INF]) == (0, 2, 2, 3, 3)
