"""The Docker Swarm runtime, assembled: one client shared by every concern's implementation.

``swarm_runtime`` is what ``create_app`` uses unless it is handed another runtime; the unit tests
pass it a docker client over an in-memory Engine.
"""

from __future__ import annotations

import docker

from app.config import Config
from app.runtime.interfaces import Runtime
from app.runtime.swarm.agents import AgentReadings, Agents, LocalReadings
from app.runtime.swarm.client import SwarmClient
from app.runtime.swarm.containers import SwarmReplicas
from app.runtime.swarm.docker_events import SwarmEventSource
from app.runtime.swarm.edge import EdgeServices, SwarmEdge
from app.runtime.swarm.function_services import SwarmFunctions
from app.runtime.swarm.lookup import Lookup
from app.runtime.swarm.namespace_networks import SwarmNamespaces
from app.runtime.swarm.networks import Networks
from app.runtime.swarm.node_docker import LocalNode
from app.runtime.swarm.secret_versions import SwarmSecrets
from app.runtime.swarm.service_logs import SwarmLogSource


class SwarmHealth:
    """The ``Health`` of the runtime: Docker answers as a Swarm manager; ready to deploy to."""

    def __init__(self, client: SwarmClient, networks: Networks, edge: SwarmEdge):
        self.client = client
        self.networks = networks
        self.edge = edge

    def check_health(self) -> None:
        self.client.check_health()

    def prepare(self) -> None:
        self.check_health()
        self.networks.ensure_functions_network()
        self.edge.refresh_edge(force=True)


def swarm_runtime(config: Config, api: docker.APIClient | None = None) -> Runtime:
    """Every concern over one Docker client: ``api``, or one from the environment (DOCKER_HOST).

    What Docker knows per node (container readings and events) comes from the node agents when
    ``config.agent_service`` names them, else from this node's Docker alone."""
    client = SwarmClient(config, api)
    lookup = Lookup(client)
    networks = Networks(client)
    local = LocalNode(client)
    agents = Agents(client) if config.agent_service else None
    node_readings = AgentReadings(agents) if agents else LocalReadings(local, client.node_id)
    edge = SwarmEdge(client, networks, [local, EdgeServices(client)])
    secrets = SwarmSecrets(client, lookup)
    functions = SwarmFunctions(client, lookup, networks, secrets)
    return Runtime(
        health=SwarmHealth(client, networks, edge),
        functions=functions,
        replicas=SwarmReplicas(client, lookup, node_readings),
        secrets=secrets,
        namespaces=SwarmNamespaces(client, networks, edge, functions, secrets),
        edge=edge,
        logs=SwarmLogSource(lookup),
        events=SwarmEventSource(lookup, agents),
    )
