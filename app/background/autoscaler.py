"""The built-in autoscaler: measures each function's load, applies ``app.domain.scaling.autoscale``.

Every gateway process starts one, but only the leader (``app.runtime.leader``: one per cluster by a
Redis lease when the async queue is on Redis, else one per host by a file lock) evaluates; the others
wait for the lock. Each round it lists the functions through the runtime (so it only ever sees
and scales functions the gateway owns), measures the load each one's ``com.openfaas.scale.type``
names, and scales through the same ``Functions.scale`` as ``/system/scale-function``:

- ``rps``: calls finished per second over the last ``rate_window`` seconds, from the counts the
  gateway keeps for ``/metrics`` (sync calls, whether nginx or the gateway carried them, and
  async ones);
- ``capacity``: calls in flight, averaged over the same window: the seconds the finished calls
  took, per second (Little's law; calls nginx routes directly are only known when they end);
- ``cpu``: millicores used, from the growth of each replica's CPU counter between rounds
  (replicas this node's Docker cannot read are assumed to use what the others use on average).

A function's idle time runs from its last call or from when it was seen waking up. A failing
round (Docker away) is logged and the next one tries again; nothing is kept from a function's
rounds once it is gone or once this process stops leading.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from app import metrics
from app.background.loop import LeaderLoop
from app.domain.models import FunctionStatus, ScalingPolicy
from app.domain.names import function_reference
from app.domain.scaling import autoscale
from app.errors import GatewayError
from app.runtime.interfaces import Functions, Replicas
from app.runtime.leader import Lock

log = logging.getLogger(__name__)


@dataclass
class _Watch:
    """What the autoscaler remembers of one function between rounds."""

    first_seen: float
    last_active: float  # the last round that saw a call finish, or the function wake up
    samples: deque = field(default_factory=deque)  # (time, calls, busy seconds), oldest first
    wanted: deque = field(default_factory=deque)  # (time, replicas the load asked for)
    cpu: dict[str, tuple[float, float]] = field(default_factory=dict)  # replica: (time, cpu seconds)
    settled: int | None = None
    replicas: int = 0
    recorded: tuple | None = None  # the (kind, load, replicas wanted) last put in the metrics


class Autoscaler:
    """Scales functions by load; ``start`` runs rounds every ``interval`` seconds in the background."""

    def __init__(
        self,
        functions: Functions,
        replicas: Replicas,
        lock: Lock,
        *,
        interval: float,
        stabilization: float,
        namespace: str,
        totals: Callable[[], dict[str, tuple[int, float]]] = metrics.function_totals,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.functions = functions
        self.replicas = replicas
        self.lock = lock
        self.interval = interval
        self.stabilization = stabilization
        self.namespace = namespace  # the default one: its functions are counted by bare name
        # Long enough to smooth a burst, short enough that the load stopping shows soon.
        self.rate_window = max(10.0, 2 * interval)
        self._totals = totals
        self._clock = clock
        self._watches: dict[str, _Watch] = {}
        # Another process leading, what this one saw grows stale: it is forgotten.
        self._loop = LeaderLoop(
            "autoscaler", self.round, lock, follow=self._watches.clear, what="autoscaler round", logger=log, interval=interval
        )

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def round(self) -> None:
        """Measure every function once and scale those whose rule says so."""
        now = self._clock()
        totals = self._totals()
        functions = {
            function_reference(status.name, status.namespace, self.namespace): status
            for status in self.functions.list_functions(available=False)
        }
        for reference, status in functions.items():
            try:
                policy = ScalingPolicy.from_labels(status.labels)
            except ValueError:
                continue  # deployed before these labels were checked; a scale request says why
            try:
                self._evaluate(reference, status, policy, totals.get(reference, (0, 0.0)), now)
            except GatewayError as exc:
                log.warning("autoscaler: could not evaluate %s: %s", reference, exc.message)
        for gone in self._watches.keys() - functions.keys():
            del self._watches[gone]

    def _evaluate(
        self, reference: str, status: FunctionStatus, policy: ScalingPolicy, total: tuple[int, float], now: float
    ) -> None:
        """One round for the function ``reference`` names (its metrics' ``function_name``)."""
        watch = self._watches.get(reference)
        if watch is None:
            watch = self._watches[reference] = _Watch(first_seen=now, last_active=now, replicas=status.replicas)
        if watch.replicas == 0 and status.replicas > 0:
            watch.last_active = now  # woken up, by a call or by hand
        watch.replicas = status.replicas
        load = self._load(watch, status, policy, total, now)
        if load is None:
            return  # the first round of a function only takes a sample
        watch.wanted.append((now, policy.replicas_for(load)))
        while watch.wanted[0][0] < now - self.stabilization:
            watch.wanted.popleft()
        # Unchanged, the gauges keep their value: with a thousand idle functions, setting each
        # again every round was a tenth of the idle gateway's CPU.
        recorded = (policy.kind, load, watch.wanted[-1][1])
        if recorded != watch.recorded:
            metrics.record_autoscaling(reference, *recorded)
            watch.recorded = recorded
        decision = autoscale(
            policy,
            status.replicas,
            [replicas for _, replicas in watch.wanted],
            self.stabilization,
            now - watch.first_seen,
            watch.settled,
            now - watch.last_active,
        )
        watch.settled = decision.settled
        if decision.replicas == status.replicas:
            return
        log.info(
            "autoscaler: %s from %d to %d replicas: %s (%s load %.2f, target %g per replica)",
            reference, status.replicas, decision.replicas, decision.reason, policy.kind, load, policy.target,
        )
        self.functions.scale(status.name, decision.replicas, status.namespace)
        watch.replicas = decision.replicas
        direction = "zero" if decision.replicas == 0 else "up" if decision.replicas > status.replicas else "down"
        metrics.record_scaling_decision(reference, direction)

    def _load(
        self, watch: _Watch, status: FunctionStatus, policy: ScalingPolicy, total: tuple[int, float], now: float
    ) -> float | None:
        """This round's load in the policy's unit, or None while there is nothing to compare with."""
        calls, busy = total
        if watch.samples and calls != watch.samples[-1][1]:
            watch.last_active = now
        if watch.samples and calls < watch.samples[-1][1]:
            watch.samples.clear()  # the counts were reset (a restarted gateway)
        watch.samples.append((now, calls, busy))
        while len(watch.samples) > 2 and watch.samples[1][0] <= now - self.rate_window:
            watch.samples.popleft()
        if policy.kind == "cpu":
            return self._millicores(watch, status, now)
        then, calls_then, busy_then = watch.samples[0]
        if now <= then:
            return None
        if policy.kind == "capacity":
            return (busy - busy_then) / (now - then)
        return (calls - calls_then) / (now - then)

    def _millicores(self, watch: _Watch, status: FunctionStatus, now: float) -> float | None:
        if status.replicas == 0:
            watch.cpu.clear()
            return 0.0
        seconds = {
            replica.instance: replica.cpu_seconds for replica in self.replicas.replica_stats(status.name, status.namespace)
        }
        rates = [
            (used - watch.cpu[replica][1]) / (now - watch.cpu[replica][0]) * 1000
            for replica, used in seconds.items()
            if replica in watch.cpu and now > watch.cpu[replica][0] and used >= watch.cpu[replica][1]
        ]
        watch.cpu = {replica: (now, used) for replica, used in seconds.items()}
        if not rates:
            return None
        return sum(rates) / len(rates) * status.replicas
