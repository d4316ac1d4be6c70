"""The edge: the containers that call functions of every namespace (the gateway and nginx, found
by ``Config.edge_label``), kept attached to each namespace's network, on every node.

Docker attaches only its own node's containers, so the attaching is done where they run:
``LocalNode`` on one node, each node's agent on a cluster (``AgentEdgeContainers``). Attaching a
container is node-local and needs no change of the services, so nginx and the gateways keep
running while a namespace is created (a service update would restart them).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from app.errors import GatewayError
from app.runtime.swarm.client import SwarmClient
from app.runtime.swarm.networks import Networks

# How often the edge containers' attachments are checked again (a recreated nginx has none).
EDGE_REFRESH = 10.0


class EdgeContainers(Protocol):
    def attach(self, networks: set[str]) -> None:
        """Attach every edge container to each of ``networks`` it is not on."""

    def detach(self, network: str) -> None:
        """Detach every edge container from ``network``, gone or not."""


class SwarmEdge:
    """Keeps ``containers`` (the edge of one node, or of every node) on the namespaces' networks."""

    def __init__(self, client: SwarmClient, networks: Networks, containers: EdgeContainers):
        self.client = client
        self.networks = networks
        self.containers = containers
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def attach(self, networks: set[str]) -> None:
        self.containers.attach(networks)

    def detach(self, network: str) -> None:
        self.containers.detach(network)

    def refresh_edge(self, force: bool = False) -> None:
        """Attach the edge containers to every namespace's network they are not on (a container
        recreated since has none); at most every EDGE_REFRESH seconds unless ``force``.

        A namespace being deleted meanwhile (its config goes first) is left alone, or left again
        if the attach came too late: a container attached to a network Swarm has just removed
        keeps a copy of it on the node, which would list the namespace once more."""
        with self._lock:
            if not force and time.monotonic() - self._checked < EDGE_REFRESH:
                return
            self._checked = time.monotonic()
        if not self.client.config.edge_label:
            return
        configured = self.networks.configured_namespaces()
        networks = {ns: net["Name"] for ns, net in self.networks.namespace_networks().items() if ns in configured}
        failed = None
        try:
            self.attach(set(networks.values()))
        except GatewayError as exc:
            failed = exc
        deleted = set(networks) - self.networks.configured_namespaces()
        for namespace in deleted:
            self.detach(networks[namespace])
        if failed is not None and not deleted:
            raise failed
