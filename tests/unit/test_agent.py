"""The node agent's HTTP (app/agent): the token, what it reads and of which containers, its
events stream."""

from __future__ import annotations

import json

import pytest

from app.agent import create_agent
from app.config import Config
from app.domain.models import LABEL_SCALE_MIN
from app.errors import BackendUnavailable
from app.runtime.swarm.client import SwarmClient
from tests.fakes import fn

TOKEN = "s3cret-token"


@pytest.fixture
def config(tmp_path) -> Config:
    (tmp_path / "agent-token").write_text(TOKEN + "\n")
    return Config(secret_mount_path=str(tmp_path), edge_label="com.openfaas.edge=test")


@pytest.fixture
def agent(config, engine):
    return create_agent(config, SwarmClient(config, engine.client())).test_client()


def _post(agent, path: str, body: object, token: str = TOKEN):
    return agent.post(path, data=json.dumps(body), headers={"Authorization": f"Bearer {token}"})


def test_an_agent_without_its_token_refuses_to_start(tmp_path, engine):
    with pytest.raises(BackendUnavailable, match="agent-token"):
        create_agent(Config(secret_mount_path=str(tmp_path)), SwarmClient(Config(), engine.client()))


@pytest.mark.parametrize("token", ["", "wrong", TOKEN + "x"])
def test_every_node_route_needs_the_token(agent, token):
    assert _post(agent, "/node/containers", {"containers": [], "what": ["stats"]}, token).status_code == 401
    assert agent.get("/node/events", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert agent.get("/healthz").status_code == 200


def test_readings_of_function_containers_on_this_node_only(agent, runtime, engine):
    runtime.functions.deploy(fn(labels={LABEL_SCALE_MIN: "2"}))
    first, second = (t["Status"]["ContainerStatus"]["ContainerID"] for t in engine.running_tasks("echo"))
    engine.cpu_usage[first] = 1_000_000_000
    gateway = engine.add_container("gateway", {"com.openfaas.edge": "test"})
    answer = _post(agent, "/node/containers", {"containers": [first, second, gateway, "ab" * 32], "what": ["json", "stats"]})
    assert answer.status_code == 200
    found = answer.get_json()
    # The gateway's container is no function's and an unknown one is not here: both left out.
    assert set(found) == {first, second}
    assert found[first]["stats"]["cpu_stats"]["cpu_usage"]["total_usage"] == 1_000_000_000
    assert found[first]["json"]["State"]["Running"] is True


@pytest.mark.parametrize("body, field", [
    ({"what": ["stats"]}, "containers"),
    ({"containers": ["not-an-id"], "what": ["stats"]}, "containers"),
    ({"containers": [], "what": ["logs"]}, "what"),
    ([], "JSON object"),
])
def test_a_bad_readings_body_is_a_400_naming_the_field(agent, body, field):
    answer = _post(agent, "/node/containers", body)
    assert answer.status_code == 400
    assert field in answer.get_data(as_text=True)


def test_events_are_this_node_s_function_container_events_as_docker_sends_them(agent, runtime, engine):
    runtime.functions.deploy(fn())
    task = engine.running_tasks("echo")[0]
    engine.kill(task["ID"])
    answer = agent.get("/node/events?since=0", headers={"Authorization": f"Bearer {TOKEN}"})
    lines = [json.loads(line) for line in answer.get_data(as_text=True).splitlines() if line.strip()]
    assert {(event["Type"], event["Action"]) for event in lines} >= {("container", "start"), ("container", "die")}
    assert all(event["Actor"]["Attributes"].get("com.openfaas.function") == "echo" for event in lines)
    assert agent.get("/node/events?since=yesterday", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 400
