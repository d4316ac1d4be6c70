"""Container events of every node from its agent (app/runtime/swarm/node_events.py), with the real
agent served on loopback over the in-memory Docker, and merged into an event stream."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from app.agent import create_agent
from app.config import Config
from app.domain.models import REPLICA_DIED, EventRequest
from app.runtime.swarm import node_events
from app.runtime.swarm.assembly import swarm_runtime
from app.runtime.swarm.client import SwarmClient
from harness import free_port
from tests.fakes import fn
from tests.waiting import wait_for


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _Threaded(WSGIServer):
    def process_request(self, request, client_address):
        threading.Thread(target=super().process_request, args=(request, client_address), daemon=True).start()


@pytest.fixture
def cluster(tmp_path, engine, monkeypatch):
    """A runtime over ``engine`` whose one node's agent serves on 127.0.0.21."""
    monkeypatch.setattr(node_events, "QUIET", 0.5)
    (tmp_path / "agent-token").write_text("token")
    port = free_port()
    config = Config(secret_mount_path=str(tmp_path), agent_service="faas_agent", agent_port=port, write_timeout=1)
    runtime = swarm_runtime(config, engine.client())
    service = engine.create_service({"Name": "faas_agent", "TaskTemplate": {"ContainerSpec": {"Image": "gw"}}})["ID"]
    engine.tasks["agent-1"] = {"ID": "agent-1", "ServiceID": service, "NodeID": engine.node_id, "DesiredState": "running",
                               "Status": {"State": "running"}, "NetworksAttachments": [{"Addresses": ["127.0.0.21/24"]}]}
    server = make_server("127.0.0.21", port, create_agent(config, SwarmClient(config, engine.client())),
                         server_class=_Threaded, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield runtime
    server.shutdown()
    server.server_close()


def test_a_replica_that_died_is_reported_from_its_node_s_agent_once(cluster, engine):
    cluster.functions.deploy(fn())
    stream = cluster.events.open(EventRequest("openfaas-fn"))
    seen = []

    def read():
        for batch in stream:
            seen.extend(batch)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # The agent asks its Docker for events (with `until`) once the follower reached it.
        wait_for(lambda: any(path == "/events" and "until" in query for _, path, query, _ in list(engine.requests)),
                 timeout=10, what="the follower's stream through the agent")
        task = engine.running_tasks("echo")[0]
        engine.kill(task["ID"])
        wait_for(lambda: [e for e in seen if e.type == REPLICA_DIED], timeout=10, what="replica.died from the agent")
    finally:
        stream.close()
        reader.join(5)
    assert not reader.is_alive()
    died = [e for e in seen if e.type == REPLICA_DIED and e.instance == task["ID"]]
    assert len(died) == 1 and died[0].exit_code == 137
