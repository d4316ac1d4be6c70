"""The edge on a namespace's network (app/runtime/swarm/edge.py): containers of docker-compose
attached on this node, services of a stack given the network in their spec, task containers left
to their service."""

from __future__ import annotations

from app.config import Config
from app.domain.models import Namespace
from app.runtime.swarm.assembly import swarm_runtime

EDGE = {"com.openfaas.edge": "stack"}


def _networks_of(engine, service_id: str) -> list[str]:
    return [n["Target"] for n in engine.services[service_id]["Spec"]["TaskTemplate"].get("Networks") or []]


def test_a_namespace_network_goes_into_edge_services_and_out_again(engine):
    runtime = swarm_runtime(Config(edge_label="com.openfaas.edge=stack"), engine.client())
    runtime.health.prepare()
    image = {"ContainerSpec": {"Image": "nginx"}}
    edge = engine.create_service({"Name": "faas_nginx", "Labels": EDGE, "TaskTemplate": image})["ID"]
    other = engine.create_service({"Name": "bystander", "TaskTemplate": image})["ID"]
    runtime.namespaces.create_namespace(Namespace("team"))
    network = next(n["Id"] for n in engine.networks.values() if n["Name"] == "func_functions-team")
    assert _networks_of(engine, edge) == [network]
    assert _networks_of(engine, other) == []
    version = engine.services[edge]["Version"]["Index"]
    runtime.edge.refresh_edge(force=True)
    assert engine.services[edge]["Version"]["Index"] == version  # already there: no update, no restart
    runtime.namespaces.delete_namespace("team")
    assert _networks_of(engine, edge) == []


def test_a_task_container_with_the_edge_label_is_left_to_its_service(engine):
    runtime = swarm_runtime(Config(edge_label="com.openfaas.edge=stack"), engine.client())
    runtime.health.prepare()
    compose = engine.add_container("gateway", EDGE)
    task = engine.add_container("faas_gateway.1", {**EDGE, "com.docker.swarm.task.id": "t1"})
    runtime.namespaces.create_namespace(Namespace("team"))
    assert "func_functions-team" in engine.plain_containers[compose]["NetworkSettings"]["Networks"]
    assert "func_functions-team" not in engine.plain_containers[task]["NetworkSettings"]["Networks"]
