"""Which replicas get calls: the gateway probes every replica over HTTP and routes only to the
ready ones (app.domain.probes has the labels and the rules).

Swarm knows only that a container runs, and a watchdog image has no program to probe itself
with, so the gateway probes: one process per host (a ``LeaderLoop`` on a file lock in
``state_dir``, like the time series) lists every function's running replicas each ``TICK``,
probes those whose period is due, all at once and each within its timeout, and writes what it
found to ``readiness.json`` in ``state_dir`` (replaced whole, so a reader never sees half). Every
worker reads that file when it changed: per function, the addresses calls go to
(``app.domain.probes.routable``) and each replica's readiness. nginx's routing table and the
gateway's own proxy both take their addresses from it.

A view older than ``STALE`` seconds (no process probes: the gateway just started, Docker is away)
is no view: routing then uses every running replica, as Swarm's DNS gives them, and readiness
reads as unknown.

Leading, the prober also gives up an update none of whose new replicas becomes ready
(``app.domain.probes.rollback_reason``): it puts the previous spec back through the runtime,
which records the reason for the function's status and events.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from app.background.loop import LeaderLoop
from app.domain.models import FunctionEndpoints, TaskEndpoint
from app.domain.names import function_reference
from app.domain.probes import Probe, Probes, ProbeState, rollback_reason, routable
from app.errors import GatewayError
from app.runtime.interfaces import Functions
from app.runtime.leader import Lock

log = logging.getLogger(__name__)

# Seconds between rounds: how soon a due probe runs, and a change of replicas is seen. Calls do
# not wait for it: a call waking a function probes its replicas itself (app/dataplane/upstreams.py),
# and nginx hands a function's calls to the gateway until the view routes them. Each round lists
# the tasks, which with many functions was the prober's largest cost after the probes.
TICK = 1.0
# A view not rewritten for this long is not trusted.
STALE = 5.0
# An unchanged view is written again only this often (well within STALE): each write has every
# worker read the whole view again.
HEARTBEAT = 2.0
# Probes in flight at once.
CONCURRENCY = 64
FUNCTION_PORT = 8080


def http_probe(address: str, port: int, probe: Probe) -> bool:
    """Whether GET ``probe.path`` at ``address:port`` answers 2xx or 3xx within its timeout."""
    connection = http.client.HTTPConnection(address, port, timeout=probe.timeout)
    try:
        return _ask(connection, probe)
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _ask(connection: http.client.HTTPConnection, probe: Probe) -> bool:
    """``probe``'s request on ``connection``, its answer read whole so the connection can serve
    the next one; whether it passed."""
    connection.request("GET", probe.path, headers={"User-Agent": "faas-swarm-py-probe"})
    response = connection.getresponse()
    response.read()
    return 200 <= response.status < 400


class KeptAliveProbes:
    """``http_probe`` over one kept-alive connection per replica and probe. The prober asks every
    replica every period, and opening and closing a connection each time was two thirds of a
    probe's cost (py-spy, 50 replicas). A kept connection the replica closed meanwhile (a
    watchdog closes idle ones after its read timeout) is replaced at once; a probe that timed
    out on one is not asked again: the replica is slow, not the connection."""

    def __init__(self):
        self._kept: dict[tuple[str, int, str, float], http.client.HTTPConnection] = {}

    def __call__(self, address: str, port: int, probe: Probe) -> bool:
        key = (address, port, probe.path, probe.timeout)
        kept = self._kept.pop(key, None)
        if kept is not None:
            try:
                return self._ask_keeping(kept, key, probe)
            except TimeoutError:
                kept.close()
                return False
            except (OSError, http.client.HTTPException):
                kept.close()
        connection = http.client.HTTPConnection(address, port, timeout=probe.timeout)
        try:
            return self._ask_keeping(connection, key, probe)
        except (OSError, http.client.HTTPException):
            connection.close()
            return False

    def _ask_keeping(self, connection: http.client.HTTPConnection, key: tuple, probe: Probe) -> bool:
        passed = _ask(connection, probe)
        if connection.sock is None:  # the replica said it closes the connection
            connection.close()
        else:
            self._kept[key] = connection
        return passed

    def retain(self, addresses: set[str]) -> None:
        """Close the kept connections to replicas not at one of ``addresses``."""
        for key in [key for key in self._kept if key[0] not in addresses]:
            self._kept.pop(key).close()


@dataclass
class _Track:
    """One probe of one replica: where it stands and when it runs next."""

    state: ProbeState
    due: float


@dataclass
class _Replica:
    first_seen: float
    readiness: _Track
    health: _Track

    @property
    def ready(self) -> bool:
        return self.readiness.state.passing and self.health.state.passing


class ReadinessView:
    """What the probing process last wrote, read from ``path`` by any process."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time):
        self.path = path
        self._clock = clock
        self._read_key: tuple[int, int] | None = None
        self._view: dict = {}

    def _current(self) -> dict | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_ino)
        if key != self._read_key:
            try:
                with open(self.path, encoding="utf-8") as file:
                    self._view = json.load(file)
            except (OSError, ValueError):
                return None
            self._read_key = key
        if self._clock() - self._view.get("at", 0) > STALE:
            return None
        return self._view

    @property
    def fresh(self) -> bool:
        """Whether a probing process wrote the view within ``STALE`` seconds."""
        return self._current() is not None

    def _function(self, reference: str) -> dict | None:
        view = self._current()
        return None if view is None else view["functions"].get(reference, {})

    def addresses(self, reference: str) -> list[str] | None:
        """Where calls of function ``reference`` go (possibly none), or None without a fresh view."""
        function = self._function(reference)
        return None if function is None else function.get("addresses", [])

    def availability(self) -> dict[str, int] | None:
        """Per function reference, how many replicas of the current spec are ready (a function
        absent has none), or None without a fresh view."""
        view = self._current()
        return None if view is None else {reference: f.get("available", 0) for reference, f in view["functions"].items()}

    def ready(self, reference: str, replica: str) -> bool | None:
        """Whether a replica passed its probes; None without a fresh view or when not probed."""
        function = self._function(reference)
        return None if function is None else function.get("ready", {}).get(replica)


class ReadinessProber:
    """Probes every replica while this process holds ``lock``, writing the view to ``path``;
    functions are named there as calls name them (``namespace`` is the default one). ``probe``
    asks one replica (default: ``KeptAliveProbes``)."""

    def __init__(
        self,
        functions: Functions,
        path: str,
        lock: Lock,
        *,
        namespace: str,
        probe: Callable[[str, int, Probe], bool] | None = None,
        port: int = FUNCTION_PORT,
        clock: Callable[[], float] = time.time,
        interval: float = TICK,
    ):
        self.functions = functions
        self.path = path
        self.namespace = namespace
        self.port = port
        # Over kept-alive connections unless told otherwise (tests ask stand-ins).
        self._kept = KeptAliveProbes() if probe is None else None
        self._probe = probe or self._kept
        self._clock = clock
        self._replicas: dict[str, _Replica] = {}
        # The functions' part of the view last written, and when.
        self._written: tuple[dict, float] | None = None
        self._pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="probe")
        self._loop = LeaderLoop(
            "readiness-prober", self.probe_round, lock, follow=self._forget, what="readiness round",
            logger=log, interval=interval,
        )

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _forget(self) -> None:
        self._replicas = {}
        self._written = None

    def probe_round(self) -> None:
        """Probe what is due, write the view, and roll back updates that never got ready.

        Raises the runtime's errors (BackendUnavailable when Docker is away): the view is then
        not rewritten, and goes stale.
        """
        now = self._clock()
        # Only functions with replicas: the view leaves the others out, which reads as no
        # addresses and none available.
        functions = self.functions.function_endpoints()
        probes_of = {(function.name, function.namespace): Probes.of_service(function.labels) for function in functions}
        replicas: dict[str, _Replica] = {}
        due: list[tuple[TaskEndpoint, _Track, Probe]] = []
        for function in functions:
            probes = probes_of[(function.name, function.namespace)]
            for task in function.tasks:
                if task.draining:
                    continue  # never called again unless nothing else is left: no need to ask
                replica = self._replicas.get(task.id) or _Replica(
                    now,
                    _Track(ProbeState(passing=False), now + probes.readiness.initial_delay),
                    _Track(ProbeState(passing=True), now + probes.health.initial_delay),
                )
                replicas[task.id] = replica
                for track, probe in ((replica.readiness, probes.readiness), (replica.health, probes.health)):
                    if track.due <= now:
                        due.append((task, track, probe))
        # A replica's readiness and health probes ask the same (by default both GET the
        # watchdog's /_/health): one request answers both.
        asked = {(task.address, probe.path, probe.timeout): probe for task, _, probe in due}
        answers = dict(zip(asked, self._pool.map(lambda key: self._probe(key[0], self.port, asked[key]), asked)))
        for task, track, probe in due:
            ok = answers[(task.address, probe.path, probe.timeout)]
            track.state = track.state.after(ok, probe)
            track.due = now + probe.period
        self._replicas = replicas
        if self._kept:
            self._kept.retain({task.address for function in functions for task in function.tasks})
        self._write(functions, now)
        for function in functions:
            self._judge_update(function, probes_of[(function.name, function.namespace)].readiness, now)

    def _write(self, functions: list[FunctionEndpoints], now: float) -> None:
        found = {}
        for function in functions:
            ready = {task.id: task.id in self._replicas and self._replicas[task.id].ready for task in function.tasks}
            found[function_reference(function.name, function.namespace, self.namespace)] = {
                "addresses": routable(function.tasks, {task for task, is_ready in ready.items() if is_ready},
                                      function.replicas),
                "ready": ready,
                "available": sum(1 for task in function.tasks if ready[task.id] and task.current and not task.draining),
            }
        if self._written and self._written[0] == found and now - self._written[1] < HEARTBEAT:
            return
        folder = os.path.dirname(self.path)
        with tempfile.NamedTemporaryFile("w", dir=folder, prefix=".readiness-", delete=False, encoding="utf-8") as file:
            json.dump({"at": now, "functions": found}, file)
        os.replace(file.name, self.path)
        self._written = (found, now)

    def _judge_update(self, function: FunctionEndpoints, readiness: Probe, now: float) -> None:
        if not function.can_roll_back:
            return
        new = [
            (now - self._replicas[task.id].first_seen, self._replicas[task.id].readiness.state)
            for task in function.tasks
            if task.current and not task.draining and task.id in self._replicas
        ]
        since_update = None if function.updated_at is None else now - function.updated_at
        reason = rollback_reason(new, readiness, since_update)
        if reason is None:
            return
        log.warning("rolling back function %s of namespace %s: %s", function.name, function.namespace, reason)
        try:
            self.functions.roll_back(function.name, function.namespace, function.version, reason)
        except GatewayError as exc:
            log.warning("rollback of function %s skipped: %s", function.name, exc.message)
