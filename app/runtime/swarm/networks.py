"""The overlay networks functions run on: the functions network of the default namespace, and one
network per other namespace, with a config beside it holding the namespace's labels.

How namespaces are named on Swarm is in ``app.runtime.swarm.specs``; this reads and creates the
networks and configs those names give, and never one of another gateway (whose functions network,
and so whose names, differ).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time

from app.domain.models import LABEL_NAMESPACE
from app.errors import BackendFailure, Conflict
from app.runtime.swarm import naming
from app.runtime.swarm.client import SwarmClient, docker_errors

log = logging.getLogger(__name__)

# How long the namespaces' subnets are trusted: a namespace created by another process is seen
# within this (its functions take longer than that to start).
SUBNETS_TTL = 2.0


class Networks:
    """The namespaces' networks and configs, read and created through ``client``."""

    def __init__(self, client: SwarmClient):
        self.client = client
        self._lock = threading.Lock()
        self._subnets: tuple[float, list[ipaddress.IPv4Network]] = (float("-inf"), [])

    def exists(self, name: str) -> bool:
        """Whether a network has exactly this name."""
        with docker_errors(f"look up network {name}"):
            # The names filter matches substrings; only the exact name counts.
            return any(net["Name"] == name for net in self.client.api.networks(names=[name]))

    def ensure_functions_network(self) -> None:
        """Create the default namespace's network when it is missing."""
        name = self.client.config.functions_network
        if self.exists(name):
            return
        log.info("creating functions network %s", name)
        try:
            with docker_errors(f"create network {name}"):
                self.client.api.create_network(
                    name, driver="overlay", attachable=True, labels={"openfaas": "true"}, check_duplicate=True
                )
        except (Conflict, BackendFailure):
            # Another gateway process may have created it a moment ago; that is what we wanted.
            if not self.exists(name):
                raise

    def of_namespace(self, namespace: str) -> str:
        """The name of ``namespace``'s network (and of its config)."""
        return naming.namespace_network(namespace, self.client.config.functions_network, self.client.default_namespace)

    def namespace_networks(self) -> dict[str, dict]:
        """The networks of the namespaces other than the default, by namespace."""
        with docker_errors("list networks"):
            networks = self.client.api.networks(filters={"label": LABEL_NAMESPACE})
        found = {}
        for network in networks:
            namespace = (network.get("Labels") or {}).get(LABEL_NAMESPACE, "")
            # Only the name this gateway gives the namespace's network: not another gateway's.
            if namespace != self.client.default_namespace and network["Name"] == self.of_namespace(namespace):
                found[namespace] = network
        return found

    def namespace_config(self, namespace: str) -> dict | None:
        """The config holding ``namespace``'s labels, or None."""
        name = self.of_namespace(namespace)
        with docker_errors("list configs"):
            configs = self.client.api.configs(filters={"name": name, "label": f"{LABEL_NAMESPACE}={namespace}"})
        # The name filter matches prefixes.
        return next((config for config in configs if config["Spec"]["Name"] == name), None)

    def configured_namespaces(self) -> set[str]:
        """The namespaces whose config exists: all but those being created or deleted."""
        with docker_errors("list configs"):
            configs = self.client.api.configs(filters={"label": LABEL_NAMESPACE})
        found = set()
        for config in configs:
            namespace = config["Spec"]["Labels"][LABEL_NAMESPACE]
            # Only the name this gateway gives the namespace's config: not another gateway's.
            if config["Spec"]["Name"] == self.of_namespace(namespace):
                found.add(namespace)
        return found

    def subnets(self) -> list[ipaddress.IPv4Network]:
        """The subnets of the other namespaces' networks, read again every SUBNETS_TTL seconds."""
        with self._lock:
            if time.monotonic() < self._subnets[0]:
                return self._subnets[1]
        subnets = [
            ipaddress.ip_network(config["Subnet"], strict=False)
            for network in self.namespace_networks().values()
            for config in (network.get("IPAM") or {}).get("Config") or []
            if config.get("Subnet")
        ]
        with self._lock:
            self._subnets = (time.monotonic() + SUBNETS_TTL, subnets)
        return subnets

    def forget_subnets(self) -> None:
        """Read the subnets again at the next ``subnets`` (a namespace was just created)."""
        with self._lock:
            self._subnets = (float("-inf"), [])
