"""Replicas as the containers of a function's tasks: their health and counters.

Docker reports container state and stats only for containers of its own node, so what this reads
covers the replicas on this gateway's node; the others are reported as unmeasured. This is the
part a multi-node runtime replaces with an agent per node.
"""

from __future__ import annotations

from app.domain.models import Instance, ReplicaStats
from app.errors import NotFound
from app.runtime.swarm import naming, readings
from app.runtime.swarm.client import SwarmClient, docker_errors
from app.runtime.swarm.lookup import Lookup


class SwarmReplicas:
    """The ``Replicas`` of the runtime over this node's Docker."""

    def __init__(self, client: SwarmClient, lookup: Lookup):
        self.client = client
        self.lookup = lookup

    def _read_container(self, container: str, what: str, **params) -> dict | None:
        """``/containers/{id}/{what}``; None when this node's Docker has no such container (it
        runs on another node, or went since the task list was read)."""
        try:
            with docker_errors(f"read a replica's {what}"):
                return self.client.engine("GET", f"/containers/{container}/{what}", params=params)
        except NotFound:
            return None

    def _stats(self, task: dict, name: str, namespace: str) -> ReplicaStats | None:
        # one-shot: the counters as they are now, without Docker waiting for a second sample.
        stats = self._read_container(readings.container_of(task), "stats", stream=0, **{"one-shot": 1})
        return readings.read_stats(stats, name, namespace, task["ID"]) if stats else None

    def replica_stats(self, name: str | None = None, namespace: str | None = None) -> list[ReplicaStats]:
        """Counters of every running replica whose container this node's Docker can read, of
        function ``name`` of ``namespace`` (None: the default) or of every function; replicas
        on other nodes are left out. One stats call per replica.

        Raises NotFound (404) for an unknown ``name``, BackendUnavailable (503).
        """
        lookup = self.lookup
        services = [lookup.function_service(name, namespace)] if name is not None else lookup.function_services()
        if not services:
            return []
        owners = {svc["ID"]: svc for svc in services}
        tasks = lookup.running_tasks(services[0]["ID"] if name is not None else None)
        found = []
        for task in tasks:
            service = owners.get(task.get("ServiceID"))
            if service is None or not readings.is_running(task):
                continue
            stats = self._stats(task, *naming.function_identity(service, self.client.default_namespace))
            if stats is not None:
                found.append(stats)
        return found

    def instances(self, name: str, namespace: str | None = None) -> list[Instance]:
        """Each slot's current task with the exit of its last ended one; containers on this node
        are inspected (health, start time) and measured, the others reported as unmeasured.

        Raises NotFound (404) for an unknown function, BackendUnavailable (503).
        """
        service = self.lookup.function_service(name, namespace)
        namespace = self.client.namespace(namespace)
        with docker_errors("list tasks"):
            tasks = self.client.api.tasks(filters={"service": service["ID"]})
        with docker_errors("list nodes"):
            nodes = {node["ID"]: (node.get("Description") or {}).get("Hostname") for node in self.client.api.nodes()}
        found = []
        for task, previous in readings.current_replicas(tasks):
            state = stats = None
            if readings.is_running(task):
                inspected = self._read_container(readings.container_of(task), "json")
                state = (inspected or {}).get("State")
                stats = self._stats(task, name, namespace) if inspected else None
            node = nodes.get(task.get("NodeID")) or task.get("NodeID")
            found.append(
                readings.read_instance(
                    task, previous, name=name, namespace=namespace, node=node, state=state, stats=stats
                )
            )
        return found
