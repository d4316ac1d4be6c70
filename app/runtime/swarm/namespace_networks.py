"""Namespaces as Swarm networks: each namespace but the default is an overlay network of its own,
which only its functions and the edge containers join, with a config of the same name holding
its labels and annotations (a network's labels cannot change, a config's can).
"""

from __future__ import annotations

import time

from app.domain.models import Namespace
from app.errors import Conflict, InvalidRequest, NotFound
from app.runtime.interfaces import Functions, Secrets
from app.runtime.swarm import naming
from app.runtime.swarm.client import SwarmClient, docker_errors
from app.runtime.swarm.edge import SwarmEdge
from app.runtime.swarm.networks import Networks


# How long a delete waits for Docker to stop listing the network it removed.
GONE_PATIENCE = 10.0


class SwarmNamespaces:
    """The ``Namespaces`` of the runtime; a delete asks ``functions`` and ``secrets`` what is left."""

    def __init__(self, client: SwarmClient, networks: Networks, edge: SwarmEdge, functions: Functions, secrets: Secrets):
        self.client = client
        self.networks = networks
        self.edge = edge
        self.functions = functions
        self.secrets = secrets

    def _namespaces(self) -> set[str]:
        """The namespaces other than the default: those with both a network and a config. A
        delete removes the config first, so a namespace is gone on every manager as soon as
        that removal is, although a node may list the network a while longer."""
        return set(self.networks.namespace_networks()) & self.networks.configured_namespaces()

    def namespace_exists(self, namespace: str) -> bool:
        return namespace == self.client.default_namespace or namespace in self._namespaces()

    def list_namespaces(self) -> list[str]:
        return sorted({self.client.default_namespace, *self._namespaces()})

    def get_namespace(self, namespace: str) -> Namespace:
        if not self.namespace_exists(namespace):
            raise NotFound(f"Namespace {namespace} not found.")
        config = self.networks.namespace_config(namespace)
        return naming.read_namespace(namespace, config["Spec"].get("Labels") if config else None)

    def create_namespace(self, namespace: Namespace) -> None:
        name = namespace.name
        if self.namespace_exists(name):
            raise Conflict(f"Namespace {name} already exists; use PUT to change its labels and annotations.")
        network = self.networks.of_namespace(name)
        try:
            with docker_errors(f"create the network of namespace {name}"):
                self.client.api.create_network(
                    network, driver="overlay", attachable=True, labels=naming.namespace_network_labels(name),
                    check_duplicate=True,
                )
        except Conflict:
            raise Conflict(f"A Docker network named {network} exists and is not namespace {name}'s.") from None
        self._store(namespace)
        self.networks.forget_subnets()
        self.edge.attach({network})

    def _store(self, namespace: Namespace) -> None:
        """Write the namespace's labels and annotations into its config, created when missing."""
        labels = naming.namespace_config_labels(namespace)
        config = self.networks.namespace_config(namespace.name)
        with docker_errors(f"store the labels of namespace {namespace.name}"):
            if config is None:
                self.client.api.create_config(
                    self.networks.of_namespace(namespace.name), namespace.name.encode(), labels=labels
                )
            else:
                # Only a config's labels can change; the update names its current version.
                self.client.engine(
                    "POST", f"/configs/{config['ID']}/update", {**config["Spec"], "Labels": labels},
                    params={"version": config["Version"]["Index"]},
                )

    def update_namespace(self, namespace: Namespace) -> None:
        if not self.namespace_exists(namespace.name):
            raise NotFound(f"Namespace {namespace.name} not found.")
        self._store(namespace)

    def delete_namespace(self, namespace: str) -> None:
        if namespace == self.client.default_namespace:
            raise InvalidRequest(f"Invalid namespace: {namespace} is the default namespace and cannot be deleted.")
        network = self.networks.namespace_networks().get(namespace)
        if network is None:
            raise NotFound(f"Namespace {namespace} not found.")
        left = [f"function {status.name}" for status in self.functions.list_functions(namespace, available=False)]
        left += [f"secret {name}" for name in self.secrets.list_secrets(namespace)]
        if left:
            raise Conflict(f"Namespace {namespace} still holds {', '.join(left)}; remove them first.")
        # The config goes first: from then on no gateway process attaches its edge to the
        # network (refresh_edge), so the detach below is the last.
        config = self.networks.namespace_config(namespace)
        if config is not None:
            with docker_errors(f"remove the labels of namespace {namespace}"):
                self.client.api.remove_config(config["ID"])
        # A container that stays attached makes the removal below a 409, so a retry finishes.
        self.edge.detach(network["Name"])
        try:
            with docker_errors(f"remove the network of namespace {namespace}"):
                self.client.api.remove_network(network["Id"])
        except InvalidRequest as exc:
            # A removed function's task may hold the network for the moment it takes to stop.
            raise Conflict(f"Namespace {namespace} is still in use, try again shortly: {exc.message}") from None
        # Docker answers the removal before this node has forgotten the network: waiting until
        # it has lets a create of the same name right away make a new network, not fail.
        deadline = time.monotonic() + GONE_PATIENCE
        while namespace in self.networks.namespace_networks() and time.monotonic() < deadline:
            time.sleep(0.1)
