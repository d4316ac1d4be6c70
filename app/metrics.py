"""Prometheus metrics for the gateway and its functions, correct across gunicorn worker processes.

gunicorn runs several worker processes and a scrape of ``/metrics`` reaches only one of them, so in
production every process writes its values to files in the folder ``PROMETHEUS_MULTIPROC_DIR``
names, and ``render`` and ``invocation_counts`` merge the files of all processes (prometheus_client's
multiprocess mode). Without the variable (unit tests, a single process) the same functions read
the in-process registry.

prometheus_client chooses between the two when ``prometheus_client.values`` is first imported, not
when a metric is used. So ``gunicorn.conf.py`` must set ``PROMETHEUS_MULTIPROC_DIR`` and create
that folder at its very top, before it imports anything from ``app`` (importing ``app.config``
imports the package, and this module opens its files at import); empty the folder once when the
master starts (``on_starting``, which a reload does not run again), so counts from an earlier run
are not added in; and call ``mark_process_dead`` from its ``child_exit`` hook. Importing this
module with the variable set but prometheus_client already imported without it raises
RuntimeError rather than serving per-worker numbers.

The gauges use the ``mostrecent`` multiprocess mode: a replica count or queue depth is whatever
some worker observed last, and the largest value any worker ever saw (``max``) would stay stuck
after a scale-down that another worker observed.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from flask import Flask, Response, g, request, request_finished, request_started
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict

_MULTIPROCESS = values.ValueClass is not values.MutexValue
if not _MULTIPROCESS and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    raise RuntimeError(
        "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client had been imported; set it before the "
        "application is imported (at the top of gunicorn.conf.py)"
    )

INVOCATIONS_TOTAL = "gateway_function_invocation_total"
FUNCTION_SECONDS = "gateway_functions_seconds"
# The finite upper bounds of gateway_functions_seconds' buckets: function calls may take up to
# upstream_timeout (60 s by default), beyond the library's 10 s buckets. nginx counts the calls it
# routes into the same buckets (app/dataplane/route_table.py hands it these bounds).
FUNCTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Any other method (werkzeug accepts every token) is counted as "other", so clients cannot grow
# the label set.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_invocations = Counter(INVOCATIONS_TOTAL, "Function calls, by function and HTTP status.", ["function_name", "code"])
_function_seconds = Histogram(
    FUNCTION_SECONDS, "Duration of function calls, by function and HTTP status.", ["function_name", "code"],
    buckets=(*FUNCTION_BUCKETS, float("inf")),
)
_service_count = Gauge(
    "gateway_service_count", "Desired replicas of each function, as last observed.", ["function_name"],
    multiprocess_mode="mostrecent",
)
_provider_requests = Counter(
    "gateway_provider_requests_total", "Requests the gateway answered, by method, route and HTTP status.",
    ["method", "route", "code"],
)
_provider_seconds = Histogram(
    "gateway_provider_request_seconds", "Time until the response headers, by method and route.", ["method", "route"]
)
_async_calls = Gauge(
    "gateway_async_calls",
    "Asynchronous call records kept, by state (queued, running, retrying, succeeded, failed, dead, cancelled), "
    "as last observed.",
    ["state"],
    multiprocess_mode="mostrecent",
)
_queue_depth = Gauge("gateway_async_queue_depth", "Asynchronous calls waiting, as last observed.", multiprocess_mode="mostrecent")
_dead_letters = Gauge(
    "gateway_async_dead_letters",
    "Asynchronous calls moved aside for good (undecodable, or handed out more than their attempts), as last observed.",
    multiprocess_mode="mostrecent",
)
_async_cancellations = Counter("gateway_async_cancellations_total", "Asynchronous calls cancelled before they ran.")
_async_replays = Counter("gateway_async_replays_total", "Finished asynchronous calls put back in the queue.")
_callbacks_failed = Counter(
    "gateway_async_callbacks_failed_total", "Async call results that never reached their callback URL.", ["function_name"]
)
_autoscaler_load = Gauge(
    "gateway_autoscaler_load",
    "Load the autoscaler measured, per function, in the unit of its scale type (calls/s, calls in flight, millicores).",
    ["function_name", "type"],
    multiprocess_mode="mostrecent",
)
_autoscaler_desired = Gauge(
    "gateway_autoscaler_desired_replicas", "Replicas the autoscaler's rule asks for, per function.", ["function_name"],
    multiprocess_mode="mostrecent",
)
_autoscaler_decisions = Counter(
    "gateway_autoscaler_decisions_total", "Replica changes the autoscaler made, by function and direction (up, down, zero).",
    ["function_name", "direction"],
)

_cron_skipped = Counter(
    "gateway_cron_runs_skipped_total",
    "Runs of cron functions not started because the function's previous run still went (concurrency forbid).",
    ["function_name"],
)


def record_invocation(function: str, code: int, seconds: float) -> None:
    """Count one call of a function and its duration.

    Call it only for functions that exist, so that clients cannot grow the label set with made-up
    names.
    """
    _invocations.labels(function, str(code)).inc()
    _function_seconds.labels(function, str(code)).observe(seconds)


def buckets_add_up(calls: int, buckets: Sequence[int]) -> bool:
    """Whether ``buckets`` counts ``calls`` calls into FUNCTION_BUCKETS and +Inf."""
    return len(buckets) == len(FUNCTION_BUCKETS) + 1 and min(buckets) >= 0 and sum(buckets) == calls


def record_invocations(function: str, code: int, calls: int, seconds: float, buckets: Sequence[int]) -> None:
    """Count ``calls`` calls of a function at once, as ``calls`` record_invocation would: their
    ``seconds`` in all, and how many fell in each bucket of FUNCTION_BUCKETS (one more count
    for +Inf). Raises ValueError when the counts do not add up to ``calls``.

    For the sums nginx sends of the calls it routed (app/dataplane/calllog.py); the same rule
    as record_invocation about names holds.
    """
    if not buckets_add_up(calls, buckets):
        raise ValueError(f"{len(buckets)} bucket counts adding up to {sum(buckets)}, not {calls} calls")
    _invocations.labels(function, str(code)).inc(calls)
    histogram = _function_seconds.labels(function, str(code))
    # prometheus_client observes one value at a time; these are the values observe() adds to
    # (tests/unit/test_metrics.py checks both give the same samples).
    histogram._sum.inc(seconds)
    for bucket, count in zip(histogram._buckets, buckets):
        if count:
            bucket.inc(count)


def set_replicas(function: str, replicas: int) -> None:
    """Record the desired replica count just observed for a function."""
    _service_count.labels(function).set(replicas)


def set_async_calls(counts: dict[str, int]) -> None:
    """Record how many async call records each state holds, just observed; the depth (calls
    queued, running or retrying) and the dead letters follow from them."""
    for state, count in counts.items():
        _async_calls.labels(state).set(count)
    _queue_depth.set(counts["queued"] + counts["running"] + counts["retrying"])
    _dead_letters.set(counts["dead"])


def record_async_cancelled() -> None:
    _async_cancellations.inc()


def record_async_replays(count: int) -> None:
    _async_replays.inc(count)


def record_callback_failed(function: str) -> None:
    """Count an async call whose callback failed for good (after every retry)."""
    _callbacks_failed.labels(function).inc()


def record_autoscaling(function: str, kind: str, load: float, desired: int) -> None:
    """Record what the autoscaler measured of a function and the replicas its rule asks for."""
    _autoscaler_load.labels(function, kind).set(load)
    _autoscaler_desired.labels(function).set(desired)


def record_scaling_decision(function: str, direction: str) -> None:
    """Count one replica change the autoscaler made (``up``, ``down`` or ``zero``)."""
    _autoscaler_decisions.labels(function, direction).inc()


def record_cron_skipped(function: str) -> None:
    """Count one run of a cron function skipped while its previous run still went."""
    _cron_skipped.labels(function).inc()


def invocation_counts() -> dict[str, int]:
    """Calls per function, summed over status codes and over every worker process."""
    calls: dict[str, int] = defaultdict(int)
    if _MULTIPROCESS:
        # Every function list asks: the counters' files alone (the histograms' hold a bucket per
        # bound, function and process), read entry by entry, each entry's key parsed once per
        # process. Merging them into metric families took a third of a short list's time.
        folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        for path in glob.glob(os.path.join(folder, "counter_*.db")):
            for key, value, _, _ in MmapedDict.read_all_values_from_file(path):
                function = _invoked_function(key)
                if function is not None:
                    calls[function] += int(value)
        return dict(calls)
    for family in _families(_invocations):
        for sample in family.samples:
            if sample.name == INVOCATIONS_TOTAL:
                calls[sample.labels["function_name"]] += int(sample.value)
    return dict(calls)


@functools.lru_cache(maxsize=1 << 16)
def _invoked_function(key: str) -> str | None:
    """The function an entry of the counters' files counts the calls of (its key is
    ``[metric, sample, labels, help]`` in JSON: prometheus_client.mmap_dict.mmap_key), or None
    for another counter's entry."""
    _, sample, labels, _ = json.loads(key)
    return labels.get("function_name") if sample == INVOCATIONS_TOTAL else None


def function_totals() -> dict[str, tuple[int, float]]:
    """Per function, the calls finished so far and the seconds they took in all, summed over
    status codes and over every worker process."""
    seconds: dict[str, float] = defaultdict(float)
    for family in _families(_function_seconds):
        for sample in family.samples:
            if sample.name == FUNCTION_SECONDS + "_sum":
                seconds[sample.labels["function_name"]] += sample.value
    return {function: (count, seconds[function]) for function, count in invocation_counts().items()}


@dataclass
class CallTotals:
    """One function's calls so far, summed over every worker process: counts by HTTP status, and
    the duration histogram over all statuses as cumulative counts per upper bound."""

    by_code: dict[str, int] = field(default_factory=dict)
    buckets: dict[float, int] = field(default_factory=dict)


def call_totals() -> dict[str, CallTotals]:
    """Per function, the calls finished so far by status code and their duration histogram,
    summed over every worker process (what the dashboard's time series samples)."""
    totals: dict[str, CallTotals] = defaultdict(CallTotals)
    for family in _families(_invocations, _function_seconds):
        for sample in family.samples:
            function = sample.labels.get("function_name")
            if sample.name == INVOCATIONS_TOTAL:
                codes = totals[function].by_code
                codes[sample.labels["code"]] = codes.get(sample.labels["code"], 0) + int(sample.value)
            elif sample.name == FUNCTION_SECONDS + "_bucket":
                buckets = totals[function].buckets
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0) + int(sample.value)
    return dict(totals)


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of every metric of every process, and its content type."""
    if _MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    # Version 0.0.4 is what prometheus_client's own server answers unless asked for another,
    # and what every Prometheus release reads.
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4


def mark_process_dead(pid: int) -> None:
    """prometheus_client's bookkeeping for a worker that exited; for gunicorn's ``child_exit`` hook.

    It removes the worker's ``live*`` gauge files. The files of its counters and histograms stay,
    so totals never drop when a worker is replaced, and so do its ``mostrecent`` gauges, whose last
    observation remains the latest one after the worker is gone.
    """
    if _MULTIPROCESS:
        multiprocess.mark_process_dead(pid)


def instrument(app: Flask) -> None:
    """Time and count every request ``app`` answers, by method, route and status.

    The route is the URL rule's template (``/system/function/<name>``), or ``unmatched`` when no
    rule matched, so the label set stays bounded whatever paths clients send. Signals are used
    rather than request hooks because they fire around all of them: a request refused by the
    basic-auth hook is counted too. For a streamed response the time is until the headers.
    """
    request_started.connect(_started, app)
    request_finished.connect(_finished, app)


def _started(sender: Flask, **_: object) -> None:
    g.metrics_started = time.perf_counter()


def _finished(sender: Flask, response: Response, **_: object) -> None:
    method = request.method if request.method in _METHODS else "other"
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    _provider_requests.labels(method, route, str(response.status_code)).inc()
    _provider_seconds.labels(method, route).observe(time.perf_counter() - g.metrics_started)


def _families(*metrics: Counter | Histogram) -> Iterable[Metric]:
    """The samples of ``metrics``, summed over every worker process (and those of the other
    metrics of the same kinds)."""
    if _MULTIPROCESS:
        # Only the files of the kinds asked for, never the gauges': those hold a replica count
        # per function and process, the most of all, and every function list asks for the
        # counts (with 1,000 functions, reading all took 35 ms a list).
        folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        kinds = sorted({"counter" if isinstance(metric, Counter) else "histogram" for metric in metrics})
        files = [path for kind in kinds for path in glob.glob(os.path.join(folder, f"{kind}_*.db"))]
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)
    return [family for metric in metrics for family in metric.collect()]
