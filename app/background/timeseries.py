"""The dashboard's time series: the last hour of each function's calls per second by status
code, latency (p50, p99), replicas, CPU and memory, kept by the gateway itself (no Prometheus).

gunicorn runs several worker processes and each request reaches any one of them, so a ring buffer
in every process would show a different series at each refresh. Instead one process per gateway
samples, elected like the autoscaler by an ``flock`` on a file in ``state_dir`` (the kernel frees
it when its worker dies; another worker takes over at its next try), and writes every point to a
SQLite file in ``state_dir`` (WAL: readers never wait on the writer) that every worker reads. The
counts it samples are the multiprocess metrics, summed over every worker and including the calls
nginx carried, so the series sees every call whichever process or proxy made it. CPU and memory
are read with one ``Replicas.replica_stats`` per sample, of the replicas this node runs. Points
are stored by the name calls and metrics give a function (``app.domain.names.function_reference``: the
bare name in the default namespace, ``name.namespace`` elsewhere), so functions of the same name
in two namespaces have a series each.

A point holds rates over the interval since the previous sample of the same process, so a newly
elected sampler writes its first point one interval after it starts: a change of sampler leaves a
gap, never a wrong rate. Counters that went down (the gateway restarted and emptied its metrics
folder) count as starting again from zero. Points older than ``keep`` seconds are removed as new
ones are written.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import time
from contextlib import closing
from typing import Callable

from app import metrics
from app.background.loop import LeaderLoop
from app.domain.models import FunctionStatus, ReplicaStats
from app.domain.names import function_reference
from app.metrics import CallTotals
from app.runtime.interfaces import Functions, Replicas
from app.runtime.leader import Lock

log = logging.getLogger(__name__)

HOUR = 3600.0


def quantile(q: float, before: dict[float, int], after: dict[float, int]) -> float | None:
    """The ``q`` quantile (0..1) of the calls that finished between two cumulative histograms,
    interpolated linearly inside its bucket as Prometheus's ``histogram_quantile`` does; None
    when no call finished. A quantile in the open-ended last bucket is its lower bound."""
    bounds = sorted(after)
    counts = [max(0, after[bound] - before.get(bound, 0)) for bound in bounds]
    if not counts or counts[-1] == 0:
        return None
    rank = q * counts[-1]
    lower, below = 0.0, 0
    for bound, count in zip(bounds, counts):
        if count >= rank and count > below:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _rate(now: int, before: int, seconds: float) -> float:
    # A counter that went down started again from zero.
    return (now - before if now >= before else now) / seconds


class TimeSeries:
    """Samples every function each ``interval`` seconds while this process holds ``lock``, and
    reads the points any process wrote from the SQLite file at ``path``."""

    def __init__(
        self,
        path: str,
        functions: Functions,
        replicas: Replicas,
        lock: Lock,
        *,
        interval: float,
        namespace: str,
        keep: float = HOUR,
        totals: Callable[[], dict[str, CallTotals]] = metrics.call_totals,
        clock: Callable[[], float] = time.time,
    ):
        self.path = path
        self.functions = functions
        self.replicas = replicas
        self.lock = lock
        self.interval = interval
        self.namespace = namespace  # the default one: its functions are named without it
        self.keep = keep
        self._totals = totals
        self._clock = clock
        # The previous sample of this process: time, call totals, each replica's counters.
        self._last: tuple[float, dict[str, CallTotals], dict[str, ReplicaStats]] | None = None
        self._loop = LeaderLoop(
            "timeseries", self._sample, lock, follow=self._forget, what="time series: sample", logger=log, interval=interval
        )

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _forget(self) -> None:
        # Another process samples, or a round failed: the next point's rates must not span the gap.
        self._last = None

    def _sample(self) -> None:
        try:
            self.sample()
        except Exception:
            self._forget()
            raise

    def _connect(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS points (function TEXT NOT NULL, t REAL NOT NULL, point TEXT NOT NULL)")
        connection.execute("CREATE INDEX IF NOT EXISTS points_by_function ON points (function, t)")
        return connection

    def sample(self) -> None:
        """Measure every function once and store a point for each, from the second sample of
        this process on. Raises the runtime's GatewayError when the orchestrator fails."""
        now = self._clock()
        totals = self._totals()
        functions = self.functions.list_functions()
        replicas = {stats.instance: stats for stats in self.replicas.replica_stats()}
        last, self._last = self._last, (now, totals, replicas)
        if last is None:
            return
        then, totals_then, replicas_then = last
        seconds = now - then
        rows = []
        for status in functions:
            reference = function_reference(status.name, status.namespace, self.namespace)
            calls, calls_then = totals.get(reference, CallTotals()), totals_then.get(reference, CallTotals())
            point = {
                "t": round(now, 3),
                "calls": {
                    code: round(_rate(count, calls_then.by_code.get(code, 0), seconds), 4)
                    for code, count in sorted(calls.by_code.items())
                },
                "p50": quantile(0.5, calls_then.buckets, calls.buckets),
                "p99": quantile(0.99, calls_then.buckets, calls.buckets),
                "replicas": status.replicas,
                "available": status.available_replicas,
                **self._resources(status, replicas, replicas_then, seconds),
            }
            rows.append((reference, now, json.dumps(point)))
        with closing(self._connect()) as connection, connection:
            connection.executemany("INSERT INTO points (function, t, point) VALUES (?, ?, ?)", rows)
            connection.execute("DELETE FROM points WHERE t < ?", (now - self.keep,))

    @staticmethod
    def _resources(
        function: FunctionStatus, now: dict[str, ReplicaStats], then: dict[str, ReplicaStats], seconds: float
    ) -> dict[str, float | int | None]:
        """The function's ``cpu``: millicores over the interval of its replicas measured both
        times, and ``memory``: the bytes its replicas measured now use; each None when no replica
        was (none on this node, or for CPU all of them new)."""
        mine = [stats for stats in now.values() if (stats.function, stats.namespace) == (function.name, function.namespace)]
        both = [stats for stats in mine if stats.instance in then]
        cpu = sum(max(0.0, stats.cpu_seconds - then[stats.instance].cpu_seconds) for stats in both)
        memory = [stats.memory_bytes for stats in mine if stats.memory_bytes >= 0]
        return {
            "cpu": round(cpu / seconds * 1000, 1) if both else None,
            "memory": sum(memory) if memory else None,
        }

    def points(self, reference: str) -> list[dict]:
        """The points of the last ``keep`` seconds of the function ``reference`` names, oldest
        first: ``t`` (Unix seconds), ``calls`` (per second, by status code), ``p50`` and ``p99``
        (seconds, None without calls), ``replicas``, ``available``, ``cpu`` (millicores) and
        ``memory`` (bytes), these two None when not measured."""
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT point FROM points WHERE function = ? AND t >= ? ORDER BY t",
                (reference, self._clock() - self.keep),
            ).fetchall()
        return [json.loads(point) for (point,) in rows]
