"""The edge: what calls functions of every namespace (the gateway and nginx, found by
``Config.edge_label``), kept attached to each namespace's network.

Two kinds of edge, and both may be there:
- containers started by docker-compose (`make up`): Docker attaches a running container to a
  network, on its own node only (``LocalNode``);
- Swarm services (`docker stack deploy`, a cluster): Docker refuses to attach a task's container
  to any network but its service's, and the tasks may run on any node, so the network is added
  to the service's spec (``EdgeServices``). Swarm then replaces the tasks one by one, the
  gateways' new task started first (deploy/cluster/stack.yml). nginx, whose port is its node's,
  could only stop first, so a stack leaves it out and routes other namespaces through the
  gateways (``Config.route_namespaces``; docs/cluster.md).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

from app.errors import GatewayError
from app.runtime.swarm.client import SwarmClient, docker_errors
from app.runtime.swarm.lookup import UPDATE_ATTEMPTS
from app.runtime.swarm.networks import Networks

# How often the edge containers' attachments are checked again (a recreated nginx has none).
EDGE_REFRESH = 10.0


class EdgeContainers(Protocol):
    def attach(self, networks: set[str]) -> None:
        """Attach every edge container or service to each of ``networks`` it is not on."""

    def detach(self, network: str) -> None:
        """Detach every edge container or service from ``network``, gone or not."""


class EdgeServices:
    """The Swarm services labelled ``Config.edge_label`` (``deploy.labels`` in a stack file)."""

    def __init__(self, client: SwarmClient):
        self.client = client

    def _network_ids(self, names: set[str]) -> dict[str, str]:
        with docker_errors("list networks"):
            found = self.client.api.networks(names=sorted(names)) if names else []
        # The names filter matches substrings; only exact names count.
        return {network["Name"]: network["Id"] for network in found if network["Name"] in names}

    def _change(self, networks: Callable[[list[dict]], list[dict]]) -> None:
        """Give each edge service the networks ``networks(current)``, where they differ."""
        with docker_errors("list the edge services"):
            services = self.client.api.services(filters={"label": self.client.config.edge_label})
        for service in services:
            for attempt in range(UPDATE_ATTEMPTS):
                template = service["Spec"].get("TaskTemplate") or {}
                current = template.get("Networks") or []
                wanted = networks(current)
                if wanted == current:
                    break
                spec = {**service["Spec"], "TaskTemplate": {**template, "Networks": wanted}}
                try:
                    with docker_errors(f"update service {service['Spec']['Name']}"):
                        self.client.engine("POST", f"/services/{service['ID']}/update", spec,
                                           params={"version": service["Version"]["Index"]})
                    break
                except GatewayError as exc:
                    # Another gateway changed it meanwhile: read it again and redo the change.
                    if "out of sequence" not in exc.message or attempt == UPDATE_ATTEMPTS - 1:
                        raise
                    with docker_errors("inspect an edge service"):
                        service = self.client.api.inspect_service(service["ID"])

    def attach(self, networks: set[str]) -> None:
        ids = self._network_ids(networks)
        if ids:
            self._change(lambda current: current + [
                {"Target": nid} for nid in sorted(set(ids.values()) - {n["Target"] for n in current})
            ])

    def detach(self, network: str) -> None:
        ids = set(self._network_ids({network}).values()) | {network}
        self._change(lambda current: [n for n in current if n["Target"] not in ids])


class SwarmEdge:
    """Keeps every one of ``edges`` (containers on this node, services) on the namespaces' networks."""

    def __init__(self, client: SwarmClient, networks: Networks, edges: list[EdgeContainers]):
        self.client = client
        self.networks = networks
        self.edges = edges
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def attach(self, networks: set[str]) -> None:
        for edge in self.edges:
            edge.attach(networks)

    def detach(self, network: str) -> None:
        for edge in self.edges:
            edge.detach(network)

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
