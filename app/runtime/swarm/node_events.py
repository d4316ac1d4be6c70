"""Container events of every node, from the node agents: what an event stream adds on a cluster.

Docker sends a container's events only on its own node. ``NodeEventFollower`` follows each node
agent's ``/node/events`` (``app.agent``) in a thread of its own, hands every Docker event on, and
picks up the agents of nodes that join every ``RELIST`` seconds. A connection that breaks or stays
quiet for ``QUIET`` seconds is opened again from the last event it passed on (the agent ends its
stream at the gateway's ``write_timeout`` too), so ``close`` stops every thread within ``QUIET``
seconds without having to cut a connection another thread reads.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

import requests

from app.errors import BackendUnavailable
from app.runtime.swarm.agents import Agents

log = logging.getLogger(__name__)

RELIST = 3.0
QUIET = 10.0
MAX_RETRY_WAIT = 5.0


class NodeEventFollower:
    """Passes each node's container events to ``put`` (one Docker event at a time, from any
    thread), from now until ``close``."""

    def __init__(self, agents: Agents, put: Callable[[dict], None]):
        self.agents = agents
        self.put = put
        self._closing = threading.Event()
        self._followed: dict[str, threading.Thread] = {}

    def start(self) -> None:
        threading.Thread(target=self._watch, name="node-events", daemon=True).start()

    def close(self) -> None:
        self._closing.set()

    def _watch(self) -> None:
        while not self._closing.is_set():
            try:
                nodes = self.agents.addresses()
            except BackendUnavailable:
                nodes = {}
            for node in nodes:
                if node not in self._followed or not self._followed[node].is_alive():
                    self._followed[node] = thread = threading.Thread(target=self._follow, args=(node,), daemon=True)
                    thread.start()
            self._closing.wait(RELIST)

    def _follow(self, node: str) -> None:
        since, wait = time.time_ns(), 0.5
        while not self._closing.is_set():
            try:
                since = self._read(node, since)
                wait = 0.5
            except (BackendUnavailable, requests.RequestException, ValueError) as exc:
                if node not in self.agents.addresses():
                    return  # the node left; the watcher follows it again if it comes back
                log.info("events of node %s: %s; again in %g s", node, exc, wait)
                self._closing.wait(wait)
                wait = min(wait * 2, MAX_RETRY_WAIT)

    def _read(self, node: str, since: int) -> int:
        """Pass on the node's events after ``since`` (ns) until its stream ends; the last one's time."""
        with self.agents.stream(node, "/node/events", {"since": f"{since // 10**9}.{since % 10**9:09d}"}, QUIET) as response:
            for line in response.iter_lines():
                if self._closing.is_set():
                    break
                if not line.strip():
                    continue
                event = json.loads(line)
                nanos = int(event.get("timeNano") or 0)
                if nanos <= since:
                    continue  # sent again after a reconnect
                since = nanos
                self.put(event)
        return since
