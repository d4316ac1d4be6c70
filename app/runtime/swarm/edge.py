"""The edge: the containers on this node that call functions of every namespace (the gateway and
nginx, found by ``Config.edge_label``), kept attached to each namespace's network.
"""

from __future__ import annotations

import contextlib
import threading
import time

from app.errors import Conflict, GatewayError
from app.runtime.swarm.client import SwarmClient, docker_errors
from app.runtime.swarm.networks import Networks

# How often the edge containers' attachments are checked again (a recreated nginx has none).
EDGE_REFRESH = 10.0


class SwarmEdge:
    """Attaches and detaches the edge containers of this node."""

    def __init__(self, client: SwarmClient, networks: Networks):
        self.client = client
        self.networks = networks
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def _containers(self) -> list[dict]:
        if not self.client.config.edge_label:
            return []
        with docker_errors("list the edge containers"):
            return self.client.api.containers(filters={"label": self.client.config.edge_label})

    def detach(self, network: str) -> None:
        """Detach every edge container on this node from ``network``, gone or not."""
        for container in self._containers():
            if network in container["NetworkSettings"]["Networks"]:
                with contextlib.suppress(GatewayError), docker_errors(f"detach a container from network {network}"):
                    self.client.api.disconnect_container_from_network(container["Id"], network)

    def attach(self, networks: set[str]) -> None:
        """Attach every edge container on this node to each of ``networks`` it is not on."""
        if not networks:
            return
        for container in self._containers():
            for network in networks - set(container["NetworkSettings"]["Networks"]):
                try:
                    with docker_errors(f"attach a container to network {network}"):
                        self.client.api.connect_container_to_network(container["Id"], network)
                except Conflict:
                    pass  # attached meanwhile by another gateway process: what we wanted

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
