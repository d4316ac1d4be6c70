"""Where a function's calls go: its task addresses, with scale from zero.

Functions are named by their canonical reference (``name``, or ``name.namespace`` outside the
default namespace). The addresses are those of the ready replicas, from the readiness view
(app.dataplane.readiness), read at every call; without a fresh view, the runtime asks DNS for the
addresses of every running replica (on Swarm ``tasks.<service>``, on a network the caller
shares; ``dnsrr`` mode, no VIP needed), cached for ``ttl`` seconds and dropped as soon as a call
to one of them fails, so a replaced task is found on the next call. Either way they are handed
out round-robin. A function with no address is looked
up once in the runtime: unknown is a 404, zero replicas are scaled to ``max(1, min)`` (one
scale per function however many calls arrive at once) and the call waits, bounded, for a
ready replica: one in the view, or one a waiting call finds ready itself, asking the running
replicas the function's readiness probe every ``WAKE_POLL`` (the prober looks only every
second, longer than a cold start); one call of a worker asks each time, whichever function
it wakes, and the others take what it found or what the prober finds.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from app.dataplane.readiness import FUNCTION_PORT, ReadinessView, http_probe
from app.domain.models import ScalingPolicy
from app.domain.probes import Probe, Probes
from app.domain.names import split_reference
from app.errors import FunctionNotFound, NoReadyReplica, NotFound
from app.runtime.interfaces import Functions


# Seconds between looks for a woken function's first ready replica, and between the DNS
# questions a worker's waking calls ask, whichever functions they wake: Docker's DNS forwards a
# name it does not know yet (a task not yet on the network) to the host's resolver, and fifty
# functions woken at once, each asking 20 times a second, made it drop questions, Docker's own
# among them (5 s each: the tasks started in waves 5 s apart, most after the calls' deadline).
WAKE_POLL = 0.05
# Seconds a replica a waking call found ready is handed to the other waiting calls: by then the
# prober's view has it.
FOUND_TTL = 1.0


def dns_lookup(host: str) -> list[str]:
    """IPv4 addresses for ``host``; empty when the name does not resolve."""
    try:
        infos = socket.getaddrinfo(host, FUNCTION_PORT, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return sorted({info[4][0] for info in infos})


@dataclass
class _Entry:
    addresses: list[str]
    expires: float


class Upstreams:
    """Resolves function names to ``host:port`` addresses for the proxy."""

    def __init__(
        self,
        functions: Functions,
        *,
        scale_from_zero: bool,
        wait_timeout: float,
        ttl: float = 2.0,
        lookup: Callable[[str], list[str]] = dns_lookup,
        port: int = FUNCTION_PORT,
        view: ReadinessView | None = None,
        probe: Callable[[str, int, Probe], bool] = http_probe,
    ):
        self.functions = functions
        self.view = view
        self.probe = probe
        self.scale_from_zero = scale_from_zero
        self.wait_timeout = wait_timeout
        self.ttl = ttl
        self.lookup = lookup
        self.port = port
        self._cache: dict[str, _Entry] = {}  # DNS answers, without a readiness view
        self._turns: dict[str, itertools.count] = {}  # each function's round-robin
        self._lock = threading.Lock()
        self._waking: dict[str, threading.Lock] = {}
        self._asked = -WAKE_POLL  # when a waiting call last asked DNS for a new task
        self._found: dict[str, _Entry] = {}  # what it found ready

    @property
    def probing(self) -> bool:
        """Whether addresses come from a fresh readiness view (only ready replicas)."""
        return self.view is not None and self.view.fresh

    def _lookup(self, function: str) -> list[str]:
        """Fresh addresses: the readiness view's, or DNS's without one."""
        ready = self.view.addresses(function) if self.view is not None else None
        if ready is not None:
            return ready
        return self._resolve(function)

    def _current(self, function: str) -> list[str]:
        """The addresses to call now: the readiness view's, read at every call since replicas
        pass and fail their probes at any time; without a view, DNS's, cached ``ttl`` seconds."""
        ready = self.view.addresses(function) if self.view is not None else None
        if ready is not None:
            return ready
        return self._cached(function) or self._resolve(function)

    def address(self, function: str) -> str:
        """An address to call ``function`` (a canonical reference) at, waiting for a replica if
        it has none.

        Raises FunctionNotFound (404) for an unknown function and NoReadyReplica (503) when no
        replica is ready within the wait timeout.
        """
        addresses = self._current(function) or self._wake(function)
        turn = self._turns.setdefault(function, itertools.count())
        return f"{addresses[next(turn) % len(addresses)]}:{self.port}"

    def table(self, functions: Iterable[str]) -> dict[str, list[str]]:
        """The task addresses of each of ``functions`` that has any, fresh (``_lookup``)."""
        return {name: addresses for name in functions if (addresses := self._lookup(name))}

    def forget(self, function: str) -> None:
        """Drop cached addresses after a failed call, so the next call asks DNS again."""
        with self._lock:
            self._cache.pop(function, None)

    def _cached(self, function: str) -> list[str]:
        entry = self._cache.get(function)
        if entry and entry.expires > time.monotonic():
            return entry.addresses
        return []

    def _resolve(self, function: str) -> list[str]:
        """Ask DNS, and keep the answer ``ttl`` seconds."""
        addresses = self.functions.function_addresses(*split_reference(function), self.lookup)
        with self._lock:
            self._cache[function] = _Entry(addresses, time.monotonic() + self.ttl)
        return addresses

    def _wake(self, function: str) -> list[str]:
        """No address: a 404, a scale from zero, or a wait for replicas that are starting."""
        name, namespace = split_reference(function)
        try:
            status = self.functions.get_function(name, namespace)
        except NotFound:
            raise FunctionNotFound(f"Function {function} not found.") from None
        if status.replicas == 0:
            if not self.scale_from_zero:
                raise NoReadyReplica(f"Function {function} is scaled to zero and scale from zero is off.")
            with self._lock:
                gate = self._waking.setdefault(function, threading.Lock())
            # One caller per worker scales; the others wait on the gate and find it done.
            with gate:
                if self.functions.get_function(name, namespace).replicas == 0:
                    target = ScalingPolicy.from_labels(status.labels).initial_replicas()
                    self.functions.scale(name, target, namespace)
        readiness = Probes.of_service(status.labels).readiness
        deadline = time.monotonic() + self.wait_timeout
        while time.monotonic() < deadline:
            addresses = self._lookup(function) or self._ready_now(function, readiness)
            if addresses:
                return addresses
            time.sleep(WAKE_POLL)
        raise NoReadyReplica(f"Function {function} has no ready replica after {self.wait_timeout:g}s.")

    def _ready_now(self, function: str, readiness: Probe) -> list[str]:
        """The running replicas that pass ``readiness`` asked now, while replicas are probed (a
        probe that passes at once: no initial delay, one success); none otherwise, and none
        when another call, of this function or another, asked within ``WAKE_POLL`` (a hundred
        calls waiting on one cold function must not probe it a hundred times over, nor fifty
        cold functions ask DNS a thousand times a second: the prober's view finds the replicas
        of those that did not get to ask within a second)."""
        if not self.probing or readiness.initial_delay or readiness.success_threshold > 1:
            return []
        now = time.monotonic()
        found = self._found.get(function)
        if found and found.expires > now:
            return found.addresses
        with self._lock:
            if now - self._asked < WAKE_POLL:
                return []
            self._asked = now
        ready = [address for address in self._resolve(function) if self.probe(address, self.port, readiness)]
        if ready:
            self._found[function] = _Entry(ready, time.monotonic() + FOUND_TTL)
        return ready
