"""Resource use of functions, sampled in the background: what ``?usage=1`` and ``/instances`` read.

One ``UsageSampler`` per gateway process reads the counters of every running replica this node
can measure (``Replicas.replica_stats``: one one-shot stats call per replica) every ``interval``
seconds, and keeps the last reading with each replica's CPU rate since the reading before. A
status read only looks at what is kept: it never waits on Docker's stats.

It samples only while someone asked for usage within ``keep_for`` seconds, and sleeps otherwise:
stats cost dockerd a cgroup read per container, every few seconds, in every gateway process,
which is worth paying for a dashboard that is watching and not for a gateway nobody asks. The
first ask after a sleep wakes it at once; usage appears once two readings give a rate (about
``interval`` seconds later). Replicas on other nodes are not measured (Docker's stats are
per node), so usage covers the replicas this node runs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable

from app.background.loop import BackgroundLoop
from app.domain.models import UNMEASURED, Instance, ReplicaStats, Usage
from app.runtime.interfaces import Replicas

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _Reading:
    stats: ReplicaStats
    at: float
    millicores: float | None  # since the reading before; None for a replica's first


class UsageSampler:
    """Keeps the last reading of every replica's counters; ``start`` samples in the background."""

    def __init__(
        self,
        replicas: Replicas,
        *,
        interval: float = 5.0,
        keep_for: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.replicas = replicas
        self.interval = interval
        self.keep_for = keep_for
        self._clock = clock
        self._readings: dict[str, _Reading] = {}  # by replica; replaced whole, never changed
        self._asked_at: float | None = None
        self._loop = BackgroundLoop("usage-sampler", self.sample, what="usage sample", logger=log, interval=self._pause)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    @property
    def sampling(self) -> bool:
        """Whether usage was asked for within ``keep_for`` seconds, so the sampler runs."""
        return self._asked_at is not None and self._clock() - self._asked_at < self.keep_for

    def _pause(self) -> float | None:
        """The wait before the next sample: ``interval`` while sampling, else until an ask."""
        if self.sampling:
            return self.interval
        self._readings = {}  # stale by the time anyone asks again
        return None

    def sample(self) -> None:
        """Read every replica's counters once and keep them with their CPU rates.

        Raises the runtime's errors (BackendUnavailable when Docker is away).
        """
        now = self._clock()
        before = self._readings
        readings = {}
        for stats in self.replicas.replica_stats():
            previous = before.get(stats.instance)
            millicores = None
            if previous is not None and now > previous.at and stats.cpu_seconds >= previous.stats.cpu_seconds:
                millicores = (stats.cpu_seconds - previous.stats.cpu_seconds) / (now - previous.at) * 1000
            readings[stats.instance] = _Reading(stats, now, millicores)
        self._readings = readings

    def _ask(self) -> dict[str, _Reading]:
        asleep = not self.sampling
        self._asked_at = self._clock()
        if asleep:
            self._loop.wake()
        return self._readings

    def usage(self, namespace: str, name: str) -> Usage | None:
        """A function's use summed over its measured replicas, or None while none has a CPU rate
        yet (just asked, no replica on this node, none running). Never waits; starts sampling."""
        replicas = [
            reading
            for reading in self._ask().values()
            if reading.stats.function == name and reading.stats.namespace == namespace and reading.millicores is not None
        ]
        if not replicas:
            return None
        return Usage(
            cpu=sum(reading.millicores for reading in replicas),
            total_memory_bytes=sum(max(reading.stats.memory_bytes, 0) for reading in replicas),
        )

    def with_cpu(self, instances: list[Instance]) -> list[Instance]:
        """``instances`` with each one's CPU rate as last sampled (UNMEASURED while there is
        none). Never waits; starts sampling."""
        readings = self._ask()
        rates = {replica: reading.millicores for replica, reading in readings.items() if reading.millicores is not None}
        return [dataclasses.replace(instance, cpu=rates.get(instance.id, UNMEASURED)) for instance in instances]
