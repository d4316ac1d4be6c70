"""Readiness and health of a function's replicas: the labels that set the probes, and the rules
the gateway applies to their results (pure).

The labels are OpenFaaS's, as OpenFaaS Pro maps them onto Kubernetes probes:
``com.openfaas.ready.http.<setting>`` and ``com.openfaas.health.http.<setting>``, where the
setting is ``path``, ``initialDelaySeconds``, ``periodSeconds``, ``timeoutSeconds``,
``successThreshold`` or ``failureThreshold``. Both probe the watchdog's ``/_/health`` on the
function's port unless told otherwise. The gateway probes each replica over HTTP itself
(``app.dataplane.readiness``), so an image holding only the watchdog needs nothing more.

A replica is called only while it is ready and healthy. Which replicas are routed, during a
rolling update too, is ``routable``; when an update gives up on its new replicas is
``rollback_reason``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from app.domain.labels import label_int, label_number
from app.domain.models import TaskEndpoint

READY_PREFIX = "com.openfaas.ready.http."
HEALTH_PREFIX = "com.openfaas.health.http."
DEFAULT_PATH = "/_/health"
SETTINGS = ("path", "initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold")
# Bounds that keep a typo from making a probe that never runs or never ends.
_MAX_SECONDS = 3600.0
_MAX_THRESHOLD = 100
# How long after an update started it can still be rolled back (Kubernetes's default progress
# deadline).
ROLLBACK_WINDOW = 600.0
# Seconds the gateway may take, past a new replica's settle time, to give an update up: a round
# of the prober (1 s), its task listing and probes, and the rollback's own service update.
# Swarm's pause between replicas is this much longer, or it replaces the next old replica first
# and, once the rollback lands, only that draining replica is left to answer.
ROLLBACK_DECISION_TIME = 2.0
# A path is sent in an HTTP request line: printable ASCII without spaces.
_PATH = re.compile(r"/[\x21-\x7e]{0,1023}")


@dataclass(frozen=True)
class Probe:
    """One HTTP probe of a replica: GET ``path``, first ``initial_delay`` seconds after the
    replica started, then every ``period`` seconds, each given ``timeout`` seconds; a 2xx or 3xx
    answer is a success. ``success_threshold`` successes in a row make the replica pass,
    ``failure_threshold`` failures in a row make it fail."""

    path: str = DEFAULT_PATH
    initial_delay: float = 0.0
    period: float = 2.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_labels(cls, labels: dict[str, str] | None, prefix: str) -> "Probe":
        """The probe the labels under ``prefix`` set, defaults for the rest.

        Raises ValueError naming the label whose value is unusable, or an unknown setting.
        """
        labels = labels or {}
        for key in labels:
            if key.startswith(prefix) and key[len(prefix):] not in SETTINGS:
                raise ValueError(f"label {key} is not a probe setting; use one of {', '.join(prefix + s for s in SETTINGS)}")
        path = labels.get(prefix + "path", DEFAULT_PATH).strip()
        if not _PATH.fullmatch(path):
            raise ValueError(f"label {prefix}path must be a URL path starting with /, without spaces, not {path!r}")
        return cls(
            path=path,
            initial_delay=label_number(labels, prefix + "initialDelaySeconds", 0.0, _MAX_SECONDS, zero=True),
            period=label_number(labels, prefix + "periodSeconds", cls.period, _MAX_SECONDS),
            timeout=label_number(labels, prefix + "timeoutSeconds", cls.timeout, _MAX_SECONDS),
            success_threshold=label_int(labels, prefix + "successThreshold", cls.success_threshold, 1, _MAX_THRESHOLD),
            failure_threshold=label_int(labels, prefix + "failureThreshold", cls.failure_threshold, 1, _MAX_THRESHOLD),
        )

    @property
    def settle_time(self) -> float:
        """How long a new replica may take to pass before it counts as never passing: the
        initial delay, then a period for every failure the threshold forgives and every success
        it needs, and the last probe's timeout."""
        return self.initial_delay + self.period * (self.failure_threshold + self.success_threshold) + self.timeout


@dataclass(frozen=True)
class Probes:
    """A function's readiness and health probes."""

    readiness: Probe
    health: Probe

    @classmethod
    def from_labels(cls, labels: dict[str, str] | None) -> "Probes":
        """Both probes from a function's labels. Raises ValueError naming the label."""
        return cls(Probe.from_labels(labels, READY_PREFIX), Probe.from_labels(labels, HEALTH_PREFIX))

    @classmethod
    def of_service(cls, labels: dict[str, str] | None) -> "Probes":
        """Both probes of a deployed function: the defaults where its labels are unusable (set on
        the service by hand, past the gateway's checks)."""
        try:
            return cls.from_labels(labels)
        except ValueError:
            return cls(Probe(), Probe())


@dataclass(frozen=True)
class ProbeState:
    """Where one probe of one replica stands: ``passing`` and the streak behind it.

    Readiness starts failing (a new replica is not called until it passed), health starts
    passing (a replica is healthy until shown otherwise), as in Kubernetes."""

    passing: bool
    successes: int = 0
    failures: int = 0
    ever_passed: bool = False

    def after(self, ok: bool, probe: Probe) -> "ProbeState":
        """The state once a probe answered ``ok`` (or did not)."""
        successes, failures = (self.successes + 1, 0) if ok else (0, self.failures + 1)
        passing = self.passing
        if successes >= probe.success_threshold:
            passing = True
        elif failures >= probe.failure_threshold:
            passing = False
        return ProbeState(passing, successes, failures, self.ever_passed or passing)


def routable(tasks: list[TaskEndpoint], ready: set[str], replicas: int) -> list[str]:
    """The addresses calls go to, sorted, of ``tasks`` of which those with an ID in ``ready``
    passed their probes, for a function that should have ``replicas``: the ready replicas of the
    current spec as soon as one is ready, so once an update's new version answers, the old one
    never does again; until then the ready ones of the previous spec; and when none is ready at
    all, the draining ones, which still answer while they stop (better than none; nginx moves a
    refused call on to the next). None at all for a function scaled to zero: its next call wakes
    it rather than reach a replica on its way out."""
    if not replicas:
        return []
    running = [task for task in tasks if task.id in ready and not task.draining]
    chosen = [task for task in running if task.current] or running or [task for task in tasks if task.draining]
    return sorted(task.address for task in chosen)


def rollback_reason(new_replicas: list[tuple[float, ProbeState]], probe: Probe, since_update: float | None) -> str | None:
    """Why an update should be rolled back, or None: ``new_replicas`` are (seconds since it was
    first seen, readiness) of each running replica of the updated spec, ``since_update`` the
    seconds since the update started (None: never updated). The update is given up when none of
    them has ever been ready and the oldest has had the probe's ``settle_time`` to become so,
    within ``ROLLBACK_WINDOW`` of the update: later, a replica that never gets ready is a fault
    of its own, not of the update."""
    if since_update is None or since_update > ROLLBACK_WINDOW or not new_replicas:
        return None
    if any(state.ever_passed for _, state in new_replicas):
        return None
    if max(age for age, _ in new_replicas) < probe.settle_time:
        return None
    return (f"no new replica became ready within {math.ceil(probe.settle_time):g}s "
            f"(readiness probe GET {probe.path} every {probe.period:g}s)")
