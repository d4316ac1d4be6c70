"""Every node's Docker, for a gateway on a cluster: the node agents (``app.agent``), one per node.

Docker answers container stats, inspections and events for its own node only. On a cluster
(``Config.agent_service`` set) each node runs an agent, a global Swarm service; ``Agents`` finds
the agent of each node in that service's task list (the task's ``NodeID`` and its address on the
agents' network) and sends it requests with the shared token (``Config.agent_token_file``).
``AgentReadings`` asks every node concerned at once, each with the ``agent_timeout`` deadline: a
node that does not answer in time, answers garbage or has no agent is reported with the reason,
never raised. ``LocalReadings`` is the same on one node, through the gateway's own Docker.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol, TypeVar

import requests

from app.config import Config
from app.errors import BackendUnavailable
from app.runtime.swarm.client import SwarmClient, docker_errors
from app.runtime.swarm.node_docker import LocalNode

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long the agents' addresses are trusted: a node that joins is asked within this.
ADDRESSES_TTL = 2.0
# Why a replica on another node is unmeasured when no agents run (one node, or a gateway
# deployed without deploy/cluster/stack.yml).
NO_AGENTS = "another node, and no node agents run to read it (docs/cluster.md)"


def read_token(config: Config) -> str:
    """The token gateways and node agents share. Raises BackendUnavailable naming the file when
    it is missing or empty."""
    try:
        with open(config.agent_token_file, encoding="utf-8") as file:
            token = file.read().strip()
    except OSError as exc:
        raise BackendUnavailable(f"Cannot read the node agents' token {config.agent_token_file}: {exc.strerror}.") from None
    if not token:
        raise BackendUnavailable(f"The node agents' token {config.agent_token_file} is empty.")
    return token


class Readings(Protocol):
    def read(
        self, containers: dict[str, list[str]], what: tuple[str, ...]
    ) -> tuple[dict[str, dict[str, dict | None]], dict[str, str]]:
        """Read ``what`` ("json", "stats") of ``containers`` (container IDs by node ID): the
        readings by container, and why each node that could not be read was not (by node ID).
        A container missing from both is gone."""


class LocalReadings:
    """Readings of the containers on the gateway's own node; those of other nodes are unmeasured."""

    def __init__(self, node: LocalNode, node_id: Callable[[], str]):
        self.node = node
        self.node_id = node_id

    def read(self, containers, what):
        here = self.node_id()
        readings = self.node.read_containers([c for ids in containers.values() for c in ids], what)
        return readings, {node: NO_AGENTS for node in containers if node != here}


class Agents:
    """The node agents of ``client``'s cluster, and one request to one of them."""

    def __init__(self, client: SwarmClient):
        self.client = client
        self.config = client.config
        self.session = requests.Session()
        # One connection per node and concurrent request, kept alive.
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=32)
        self.session.mount("http://", adapter)
        self._lock = threading.Lock()
        self._addresses: tuple[float, dict[str, str]] = (float("-inf"), {})
        self._token: str | None = None

    def token(self) -> str:
        """The shared token, read once (``read_token``)."""
        if self._token is None:
            self._token = read_token(self.config)
        return self._token

    def addresses(self) -> dict[str, str]:
        """The address of each node's running agent, by node ID (read again every ADDRESSES_TTL s).

        Raises BackendUnavailable (503) when Docker cannot be reached.
        """
        with self._lock:
            if time.monotonic() < self._addresses[0]:
                return self._addresses[1]
        with docker_errors("list the node agents"):
            tasks = self.client.api.tasks(filters={"service": self.config.agent_service, "desired-state": "running"})
        found = {}
        for task in tasks:
            if (task.get("Status") or {}).get("State") != "running":
                continue
            for attachment in task.get("NetworksAttachments") or []:
                for address in attachment.get("Addresses") or []:
                    found[task["NodeID"]] = address.split("/")[0]
        with self._lock:
            self._addresses = (time.monotonic() + ADDRESSES_TTL, found)
        return found

    def url(self, node: str, path: str) -> str:
        """The URL of ``path`` on ``node``'s agent. Raises BackendUnavailable when it has none."""
        address = self.addresses().get(node)
        if address is None:
            raise BackendUnavailable("no node agent runs there")
        return f"http://{address}:{self.config.agent_port}{path}"

    def post(self, node: str, path: str, body: dict) -> object:
        """POST ``body`` to ``node``'s agent; its JSON answer, within ``agent_timeout``.

        Raises BackendUnavailable saying why the node did not answer usefully.
        """
        try:
            response = self.session.post(
                self.url(node, path), json=body, timeout=self.config.agent_timeout,
                headers={"Authorization": f"Bearer {self.token()}"},
            )
            response.raise_for_status()
            return response.json()
        except requests.Timeout:
            raise BackendUnavailable(f"its node agent did not answer within {self.config.agent_timeout:g} s") from None
        except requests.HTTPError as exc:
            raise BackendUnavailable(f"its node agent answered {exc.response.status_code}") from None
        except (requests.RequestException, ValueError) as exc:
            raise BackendUnavailable(f"its node agent could not be read: {type(exc).__name__}") from None

    def stream(self, node: str, path: str, params: dict, quiet: float) -> requests.Response:
        """GET ``path`` of ``node``'s agent as a stream that fails after ``quiet`` s without data.

        Raises BackendUnavailable or requests' errors.
        """
        response = self.session.get(
            self.url(node, path), params=params, stream=True, timeout=(self.config.agent_timeout, quiet),
            headers={"Authorization": f"Bearer {self.token()}"},
        )
        response.raise_for_status()
        return response

    def each(self, nodes: list[str], ask: Callable[[str], T]) -> tuple[dict[str, T], dict[str, str]]:
        """``ask(node)`` for every node at once: the answers and, for the nodes whose ask raised
        BackendUnavailable, the reason, both by node."""
        if not nodes:
            return {}, {}

        def attempt(node: str):
            try:
                return ask(node), None
            except BackendUnavailable as exc:
                return None, exc.message

        with ThreadPoolExecutor(max_workers=min(len(nodes), 16)) as pool:
            outcomes = dict(zip(nodes, pool.map(attempt, nodes)))
        answers = {node: answer for node, (answer, reason) in outcomes.items() if reason is None}
        reasons = {node: reason for node, (_, reason) in outcomes.items() if reason is not None}
        for node, reason in reasons.items():
            log.warning("node %s: %s", node, reason)
        return answers, reasons


class AgentReadings:
    """Readings of containers on every node, each node's from its agent."""

    def __init__(self, agents: Agents):
        self.agents = agents

    def read(self, containers, what):
        def ask(node: str) -> dict:
            answer = self.agents.post(node, "/node/containers", {"containers": containers[node], "what": list(what)})
            if not isinstance(answer, dict):
                raise BackendUnavailable("its node agent answered something else than readings")
            return answer

        answers, reasons = self.agents.each(sorted(containers), ask)
        readings = {container: found for answer in answers.values() for container, found in answer.items()}
        return readings, reasons
