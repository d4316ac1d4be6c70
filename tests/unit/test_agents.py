"""The gateway's side of the node agents (app/runtime/swarm/agents.py): finding each node's agent,
and replicas read on three nodes at once, one of them slow, one gone, one answering garbage.

The agents are real HTTP servers on loopback addresses of their own (127.0.0.N, one port): the
real agent (app.agent) over the in-memory Docker, and stand-ins that misbehave."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from app.agent import create_agent
from app.config import Config
from app.domain.models import LABEL_SCALE_MIN, UNMEASURED
from app.runtime.swarm.assembly import swarm_runtime
from app.runtime.swarm.client import SwarmClient
from harness import free_port
from tests.fakes import fn

TOKEN = "agent-token-value"
NODES = {"n-good": "127.0.0.11", "n-slow": "127.0.0.12", "n-garbage": "127.0.0.13", "n-gone": "127.0.0.14"}


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _ThreadedWSGI(WSGIServer):
    daemon_threads = True

    def process_request(self, request, client_address):
        threading.Thread(target=super().process_request, args=(request, client_address), daemon=True).start()


class Slow(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        time.sleep(3)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class Garbage(Slow):
    def do_POST(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "8")
        self.end_headers()
        self.wfile.write(b"not json")


@pytest.fixture
def cluster(tmp_path, engine):
    """A runtime whose function has one replica on each of four nodes, each node's agent at its
    own loopback address; yields (runtime, tasks by node)."""
    (tmp_path / "agent-token").write_text(TOKEN)
    port = free_port()
    config = Config(secret_mount_path=str(tmp_path), agent_service="faas_agent", agent_port=port, agent_timeout=0.5)
    runtime = swarm_runtime(config, engine.client())
    runtime.functions.deploy(fn(labels={LABEL_SCALE_MIN: "4"}))
    tasks = dict(zip(NODES, engine.running_tasks("echo")))
    for node, task in tasks.items():
        task["NodeID"] = node
    # The agents' service, a task on each node with its address on the agents' network.
    agent_service = engine.create_service(
        {"Name": "faas_agent", "TaskTemplate": {"ContainerSpec": {"Image": "gateway"}}, "Mode": {"Global": {}}}
    )["ID"]
    for node, address in NODES.items():
        engine.tasks[f"agent-{node}"] = {"ID": f"agent-{node}", "ServiceID": agent_service, "NodeID": node,
                                         "DesiredState": "running", "Status": {"State": "running"},
                                         "NetworksAttachments": [{"Addresses": [f"{address}/24"]}]}
    agent = create_agent(config, SwarmClient(config, engine.client()))
    servers = [
        make_server(NODES["n-good"], port, agent, server_class=_ThreadedWSGI, handler_class=_Quiet),
        ThreadingHTTPServer((NODES["n-slow"], port), Slow),
        ThreadingHTTPServer((NODES["n-garbage"], port), Garbage),
    ]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    engine.cpu_usage[tasks["n-good"]["Status"]["ContainerStatus"]["ContainerID"]] = 3_000_000_000
    try:
        yield runtime, tasks
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_each_node_s_agent_is_found_in_the_agent_service_s_tasks(cluster):
    runtime, _ = cluster
    agents = runtime.replicas.node_readings.agents
    assert agents.addresses() == NODES


def test_replicas_on_a_slow_a_garbled_and_a_gone_node_are_unmeasured_with_the_reason(cluster):
    runtime, tasks = cluster
    started = time.monotonic()
    instances = {instance.id: instance for instance in runtime.replicas.instances("echo")}
    # All nodes are asked at once: the slow one costs one deadline, not one per node.
    assert time.monotonic() - started < 2.5
    good = instances[tasks["n-good"]["ID"]]
    assert good.memory_bytes > 0 and good.unmeasured is None and good.health.status == "none"
    for node, why in (("n-slow", "did not answer within 0.5 s"), ("n-garbage", "could not be read"),
                      ("n-gone", "could not be read")):
        instance = instances[tasks[node]["ID"]]
        assert instance.memory_bytes == UNMEASURED, node
        assert why in instance.unmeasured and node in instance.unmeasured, instance.unmeasured
    stats = runtime.replicas.replica_stats("echo")
    assert [(s.instance, s.cpu_seconds) for s in stats] == [(tasks["n-good"]["ID"], 3.0)]


def test_a_node_without_an_agent_and_a_wrong_token_are_reasons_too(cluster, tmp_path):
    runtime, tasks = cluster
    agents = runtime.replicas.node_readings.agents
    agents._token = "wrong"
    instances = {instance.id: instance for instance in runtime.replicas.instances("echo")}
    assert "answered 401" in instances[tasks["n-good"]["ID"]].unmeasured
    agents._addresses = (float("inf"), {})
    instances = {instance.id: instance for instance in runtime.replicas.instances("echo")}
    assert all("no node agent runs there" in instance.unmeasured for instance in instances.values())
