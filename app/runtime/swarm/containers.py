"""Replicas as the containers of a function's tasks: their health and counters, on every node.

Docker reports container state and stats only for containers of its own node: ``Readings`` reads
them on each replica's node (``app.runtime.swarm.agents``: through the node agents on a cluster,
through the gateway's own Docker on one node). A node that cannot be read leaves its replicas
unmeasured, with the reason in the instance's ``unmeasured``; it never fails the answer.
"""

from __future__ import annotations

from app.domain.models import Instance, ReplicaStats
from app.runtime.swarm import naming, readings
from app.runtime.swarm.agents import Readings
from app.runtime.swarm.client import SwarmClient, docker_errors
from app.runtime.swarm.lookup import Lookup


def _by_node(tasks: list[dict]) -> dict[str, list[str]]:
    """The containers of running ``tasks``, by node ID."""
    found: dict[str, list[str]] = {}
    for task in tasks:
        if readings.is_running(task):
            found.setdefault(task.get("NodeID") or "", []).append(readings.container_of(task))
    return found


class SwarmReplicas:
    """The ``Replicas`` of the runtime, each replica read on its node through ``node_readings``."""

    def __init__(self, client: SwarmClient, lookup: Lookup, node_readings: Readings):
        self.client = client
        self.lookup = lookup
        self.node_readings = node_readings

    def replica_stats(self, name: str | None = None, namespace: str | None = None) -> list[ReplicaStats]:
        """Counters of every running replica that could be read, of function ``name`` of
        ``namespace`` (None: the default) or of every function; one request per node.

        Raises NotFound (404) for an unknown ``name``, BackendUnavailable (503).
        """
        lookup = self.lookup
        services = [lookup.function_service(name, namespace)] if name is not None else lookup.function_services()
        if not services:
            return []
        owners = {svc["ID"]: svc for svc in services}
        tasks = [t for t in lookup.running_tasks(services[0]["ID"] if name is not None else None) if t.get("ServiceID") in owners]
        found, _ = self.node_readings.read(_by_node(tasks), ("stats",))
        stats = []
        for task in tasks:
            reading = (found.get(readings.container_of(task)) or {}).get("stats") if readings.is_running(task) else None
            identity = naming.function_identity(owners[task["ServiceID"]], self.client.default_namespace)
            measured = readings.read_stats(reading, *identity, task["ID"]) if reading else None
            if measured is not None:
                stats.append(measured)
        return stats

    def instances(self, name: str, namespace: str | None = None) -> list[Instance]:
        """Each slot's current task with the exit of its last ended one; running containers are
        inspected (health, start time) and measured on their nodes, in one request per node.

        Raises NotFound (404) for an unknown function, BackendUnavailable (503).
        """
        service = self.lookup.function_service(name, namespace)
        namespace = self.client.namespace(namespace)
        with docker_errors("list tasks"):
            tasks = self.client.api.tasks(filters={"service": service["ID"]})
        with docker_errors("list nodes"):
            nodes = {node["ID"]: (node.get("Description") or {}).get("Hostname") for node in self.client.api.nodes()}
        current = readings.current_replicas(tasks)
        found, reasons = self.node_readings.read(_by_node([task for task, _ in current]), ("json", "stats"))
        instances = []
        for task, previous in current:
            reading = found.get(readings.container_of(task)) or {} if readings.is_running(task) else {}
            inspected, stats = reading.get("json"), reading.get("stats")
            node = nodes.get(task.get("NodeID")) or task.get("NodeID")
            unmeasured = reasons.get(task.get("NodeID") or "") if readings.is_running(task) else None
            instances.append(
                readings.read_instance(
                    task, previous, name=name, namespace=namespace, node=node,
                    state=(inspected or {}).get("State"),
                    stats=readings.read_stats(stats, name, namespace, task["ID"]) if stats and inspected else None,
                    unmeasured=f"{node}: {unmeasured}" if unmeasured else None,
                )
            )
        return instances
