"""The node agent: what one node's Docker knows only about itself, for the gateways of a cluster.

Every node of a cluster runs one (``deploy/cluster/stack.yml``: the gateway image, entry point
``app.agent.wsgi:app``, a global service on the internal network ``agents`` only the gateways
join). It answers only requests with the token the gateways share with it (the Swarm secret
``agent-token``), and only about function containers (``app.runtime.swarm.node_docker``). The
gateway's side is ``app.runtime.swarm.agents``.
"""

from __future__ import annotations

import hmac

from flask import Flask, request

from app.config import Config
from app.errors import Unauthorized
from app.runtime.swarm.agents import read_token
from app.runtime.swarm.client import SwarmClient
from app.runtime.swarm.node_docker import LocalNode
from app.web.handlers import register_error_handlers


def create_agent(config: Config, client: SwarmClient | None = None) -> Flask:
    """The agent's application over this node's Docker (``client``, or one from the environment).

    Raises BackendUnavailable when the token cannot be read: an agent without one never serves.
    """
    from app.agent.routes import bp

    token = read_token(config).encode()
    agent = Flask(__name__)
    agent.extensions["node"] = LocalNode(client or SwarmClient(config))

    @agent.before_request
    def _authenticate():
        if request.endpoint == "agent.healthz":
            return
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(given, token):
            raise Unauthorized("The node agent answers only the gateways: a valid token is required.")

    agent.register_blueprint(bp)
    register_error_handlers(agent)
    return agent
