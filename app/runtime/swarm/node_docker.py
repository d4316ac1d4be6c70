"""What one node's Docker says about containers, and about that node only: their inspection and
one-shot stats, their events, and attaching the node's edge containers (those that are no Swarm
task) to networks.

``LocalNode`` is this process's own node, through its Docker. A gateway on one node uses it
directly; on a cluster every node runs an agent (``app.agent``) that serves it to the gateways
(``app.runtime.swarm.agents``). It only ever reads containers of functions (labelled
``com.openfaas.function``) and only attaches the containers of ``Config.edge_label``.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

from app.domain.models import LABEL_FUNCTION
from app.errors import Conflict, GatewayError, NotFound
from app.runtime.swarm.client import DOCKER_CONNECTIONS, SwarmClient, docker_errors

# What a container can be asked for: Docker's inspection and its one-shot stats.
READINGS = {"json": {}, "stats": {"stream": 0, "one-shot": 1}}
# Only what can become a FunctionEvent: exec probes (every second) are not sent at all.
_TASK_LABEL = "com.docker.swarm.task.id"
CONTAINER_EVENTS = {
    "type": ["container"],
    "event": ["start", "die", "oom", "health_status"],
    "label": [LABEL_FUNCTION],
}


class LocalNode:
    """This node's Docker, through ``client``."""

    def __init__(self, client: SwarmClient):
        self.client = client

    def _read(self, container: str, what: str) -> dict | None:
        try:
            with docker_errors(f"read a replica's {what}"):
                return self.client.engine("GET", f"/containers/{container}/{what}", params=READINGS[what])
        except NotFound:
            return None  # gone since the task list was read

    def read_containers(self, containers: list[str], what: tuple[str, ...]) -> dict[str, dict[str, dict | None]]:
        """``{container: {what: Docker's answer or None}}`` for the function containers among
        ``containers`` that run on this node (others are left out); read in parallel.

        Raises BackendUnavailable (503) when Docker cannot be reached.
        """
        with docker_errors("list the function containers"):
            here = {c["Id"] for c in self.client.api.containers(all=True, filters={"label": LABEL_FUNCTION})}
        wanted = [container for container in containers if container in here]
        pairs = [(container, kind) for container in wanted for kind in what]
        with ThreadPoolExecutor(max_workers=DOCKER_CONNECTIONS) as pool:
            answers = list(pool.map(lambda pair: self._read(*pair), pairs))
        found: dict[str, dict[str, dict | None]] = {container: {} for container in wanted}
        for (container, kind), answer in zip(pairs, answers):
            found[container][kind] = answer
        return found

    def _edge_containers(self) -> list[dict]:
        """This node's edge containers that are no Swarm task: Docker attaches a task's container
        only to its service's networks (``EdgeServices`` in app.runtime.swarm.edge does those)."""
        if not self.client.config.edge_label:
            return []
        with docker_errors("list the edge containers"):
            found = self.client.api.containers(filters={"label": self.client.config.edge_label})
        return [container for container in found if _TASK_LABEL not in (container.get("Labels") or {})]

    def attach(self, networks: set[str]) -> None:
        """Attach every edge container of this node to each of ``networks`` it is not on."""
        for container in self._edge_containers():
            for network in sorted(networks - set(container["NetworkSettings"]["Networks"])):
                try:
                    with docker_errors(f"attach a container to network {network}"):
                        self.client.api.connect_container_to_network(container["Id"], network)
                except Conflict:
                    pass  # attached meanwhile by another gateway process: what we wanted

    def detach(self, network: str) -> None:
        """Detach every edge container of this node from ``network``, gone or not."""
        for container in self._edge_containers():
            if network in container["NetworkSettings"]["Networks"]:
                with contextlib.suppress(GatewayError), docker_errors(f"detach a container from network {network}"):
                    self.client.api.disconnect_container_from_network(container["Id"], network)
