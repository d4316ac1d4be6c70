"""Namespaces through the HTTP layer, over the Swarm adapter and an in-memory Docker: the
namespace resource, the same function and secret names in two namespaces, the refusals, the
edge containers' networks, and every place a function is named (routing, proxy, alerts, logs).
"""

from __future__ import annotations

import dataclasses

import pytest

from app import create_app
from app.config import Config
from app.dataplane.upstreams import Upstreams
from app.runtime.swarm import namespace_networks
from tests.fakes import FakeLogSource, fake_runtime
from tests.unit.helpers import AUTH, PASSWORD, USER, deployment, webhook
from tests.upstream import Lookup

NETWORK = "func_functions-team-a"
EDGE = "com.openfaas.edge=test"


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(
        basic_auth_user=USER, basic_auth_password=PASSWORD, write_timeout=2, state_dir=str(tmp_path), edge_label=EDGE
    )


def create(client, name: str = "team-a", **fields) -> None:
    response = client.post("/system/namespace/", json={"name": name, **fields})
    assert response.status_code == 201, response.text


def network(engine, name: str) -> dict | None:
    return next((n for n in engine.networks.values() if n["Name"] == name), None)


def test_namespace_lifecycle_as_the_go_sdk_drives_it(client, engine):
    assert client.get("/system/namespaces").get_json() == ["openfaas-fn"]
    create(client, labels={"openfaas": "1", "env": "dev"}, annotations={"openfaas": "1"})
    assert client.get("/system/namespaces").get_json() == ["openfaas-fn", "team-a"]
    assert network(engine, NETWORK)["Labels"]["com.openfaas.namespace"] == "team-a"
    assert network(engine, NETWORK)["Attachable"]
    read = client.get("/system/namespace/team-a")
    assert read.get_json() == {"name": "team-a", "labels": {"openfaas": "1", "env": "dev"}, "annotations": {"openfaas": "1"}}
    changed = {"name": "team-a", "labels": {"env": "prod"}, "annotations": {"owner": "me"}}
    assert client.put("/system/namespace/team-a", json=changed).status_code == 200
    assert client.get("/system/namespace/team-a").get_json() == changed
    assert client.delete("/system/namespace/team-a").status_code == 200
    assert client.get("/system/namespaces").get_json() == ["openfaas-fn"]
    assert network(engine, NETWORK) is None and not engine.configs
    assert client.get("/system/namespace/team-a").status_code == 404


def test_the_default_namespace_is_readable_relabelable_and_not_deletable(client):
    assert client.get("/system/namespace/openfaas-fn").get_json() == {"name": "openfaas-fn", "labels": {}, "annotations": {}}
    relabelled = {"name": "openfaas-fn", "labels": {"env": "prod"}, "annotations": {}}
    assert client.put("/system/namespace/openfaas-fn", json=relabelled).status_code == 200
    assert client.get("/system/namespace/openfaas-fn").get_json() == relabelled
    refused = client.delete("/system/namespace/openfaas-fn")
    assert refused.status_code == 400 and "default namespace" in refused.text
    assert client.post("/system/namespace/", json={"name": "openfaas-fn"}).status_code == 409


@pytest.mark.parametrize(
    "method, path, body, words",
    [
        ("post", "/system/namespace/", {"name": "Team_A"}, "Invalid name: 'Team_A' is not a valid namespace"),
        ("post", "/system/namespace/", {"name": "a" * 64}, "Invalid name:"),
        ("post", "/system/namespace/", {"name": "ok", "labels": {"com.openfaas.namespace": "x"}}, "Invalid labels:"),
        ("get", "/system/namespace/Bad.Name", None, "Invalid namespace:"),
        ("put", "/system/namespace/team-b", {"name": "team-c"}, "Invalid name: 'team-c' differs"),
        ("get", "/system/functions?namespace=-bad", None, "Invalid namespace:"),
        ("post", "/system/functions", deployment(namespace="nowhere"), "namespace nowhere does not exist"),
        ("get", "/system/functions?namespace=nowhere", None, "namespace nowhere does not exist"),
        ("post", "/system/secrets", {"name": "k", "value": "v", "namespace": "nowhere"}, "namespace nowhere does not exist"),
        ("post", "/system/scale-function/echo?namespace=nowhere", {"replicas": 1}, "namespace nowhere does not exist"),
        ("get", "/system/logs?name=echo&namespace=nowhere", None, "namespace nowhere does not exist"),
    ],
)
def test_bad_and_unknown_namespaces_are_400s_naming_the_field(client, method, path, body, words):
    response = getattr(client, method)(path, json=body)
    assert response.status_code == 400 and words in response.text, response.text


def test_unknown_namespaces_are_404s(client):
    assert client.delete("/system/namespace/team-z").status_code == 404
    assert client.put("/system/namespace/team-z", json={"name": "team-z"}).status_code == 404


def test_the_same_function_name_lives_in_two_namespaces(client, engine):
    create(client)
    assert client.post("/system/functions", json=deployment(envVars={"who": "default"})).status_code == 202
    assert client.post("/system/functions?namespace=team-a", json=deployment(envVars={"who": "a"})).status_code == 202
    default, team_a = engine.service("echo"), engine.service("echo_team-a")
    assert default["Spec"]["TaskTemplate"]["Networks"] == [{"Target": "func_functions"}]
    # Reachable by its bare name on its own namespace's network only.
    assert team_a["Spec"]["TaskTemplate"]["Networks"] == [{"Target": NETWORK, "Aliases": ["echo"]}]
    assert team_a["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"]["com.openfaas.namespace"] == "team-a"
    listed = client.get("/system/functions?namespace=team-a").get_json()
    assert [(f["name"], f["namespace"], f["envVars"]) for f in listed] == [("echo", "team-a", {"who": "a"})]
    assert client.get("/system/function/echo").get_json()["envVars"] == {"who": "default"}
    assert client.get("/system/function/echo?namespace=team-a").get_json()["namespace"] == "team-a"
    assert client.post("/system/functions", json=deployment(namespace="team-a")).status_code == 409
    scaled = client.post("/system/scale-function/echo", json={"replicas": 3, "namespace": "team-a"})
    assert scaled.status_code == 202
    assert (engine.service("echo_team-a")["Spec"]["Mode"], engine.service("echo")["Spec"]["Mode"]) == (
        {"Replicated": {"Replicas": 3}}, {"Replicated": {"Replicas": 1}}
    )
    assert client.delete("/system/functions", json={"functionName": "echo", "namespace": "team-a"}).status_code == 200
    assert [f["name"] for f in client.get("/system/functions").get_json()] == ["echo"]


def test_a_function_deployed_before_namespaces_stays_in_the_default_one(client, engine, runtime):
    """A service of an older gateway: no namespace label on it or its containers."""
    client.post("/system/functions", json=deployment())
    spec = engine.service("echo")["Spec"]
    del spec["Labels"]["com.openfaas.namespace"], spec["TaskTemplate"]["ContainerSpec"]["Labels"]["com.openfaas.namespace"]
    status = client.get("/system/function/echo?namespace=openfaas-fn").get_json()
    assert (status["name"], status["namespace"]) == ("echo", "openfaas-fn")
    assert client.post("/system/scale-function/echo", json={"replicas": 2}).status_code == 202
    assert runtime.functions.function_addresses("echo", None, lambda host: [host]) == ["tasks.echo"]


def test_secrets_are_per_namespace(client, engine):
    create(client)
    client.post("/system/secrets", json={"name": "api-key", "value": "default-value"})
    assert client.post("/system/secrets", json={"name": "api-key", "value": "a-value", "namespace": "team-a"}).status_code == 201
    assert engine.secret_value("api-key_team-a-v1") == b"a-value"
    client.post("/system/functions", json=deployment(secrets=["api-key"], namespace="team-a"))
    mount = engine.service("echo_team-a")["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"][0]
    assert (mount["SecretName"], mount["File"]["Name"]) == ("api-key_team-a-v1", "/var/openfaas/secrets/api-key")
    # Updating team-a's secret rolls team-a's function only; the default one stays.
    client.put("/system/secrets?namespace=team-a", json={"name": "api-key", "value": "a2"})
    mount = engine.service("echo_team-a")["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"][0]
    assert mount["SecretName"] == "api-key_team-a-v2"
    assert engine.secret_value("api-key-v1") == b"default-value"
    # The default namespace's secret is used by nobody there, so it can go.
    assert client.delete("/system/secrets", json={"name": "api-key"}).status_code == 200
    assert client.get("/system/secrets?namespace=team-a").get_json() == [{"name": "api-key"}]
    assert client.get("/system/secrets").get_json() == []
    # A function of the default namespace cannot mount team-a's secret.
    refused = client.post("/system/functions", json=deployment("other", secrets=["api-key"]))
    assert refused.status_code == 404 and "namespace openfaas-fn" in refused.text


def test_a_deleted_namespace_is_gone_for_the_very_next_read(client, engine):
    create(client)
    # As on a cluster: Docker lists the removed network for a few more reads.
    engine.network_linger = 3
    assert client.delete("/system/namespace/team-a").status_code == 200
    assert client.get("/system/namespace/team-a").status_code == 404
    assert "team-a" not in client.get("/system/namespaces").get_json()


def test_a_deleted_namespace_is_gone_where_its_network_is_still_listed(client, engine, monkeypatch):
    # The next read on another manager, which still lists the network after this one forgot it.
    monkeypatch.setattr(namespace_networks, "GONE_PATIENCE", 0.0)
    create(client)
    engine.network_linger = 1_000
    assert client.delete("/system/namespace/team-a").status_code == 200
    assert client.get("/system/namespace/team-a").status_code == 404
    assert "team-a" not in client.get("/system/namespaces").get_json()


def test_a_namespace_holding_functions_or_secrets_is_not_deleted(client, engine):
    create(client)
    client.post("/system/functions", json=deployment(namespace="team-a"))
    client.post("/system/secrets", json={"name": "api-key", "value": "v", "namespace": "team-a"})
    refused = client.delete("/system/namespace/team-a")
    assert refused.status_code == 409
    assert refused.text == "Namespace team-a still holds function echo, secret api-key; remove them first.\n"
    assert network(engine, NETWORK) is not None
    client.delete("/system/functions", json={"functionName": "echo", "namespace": "team-a"})
    client.delete("/system/secrets", json={"name": "api-key", "namespace": "team-a"})
    assert client.delete("/system/namespace/team-a").status_code == 200


def test_names_too_long_for_swarm_once_the_namespace_is_added_are_400s(client):
    create(client, "n" * 40)
    refused = client.post("/system/functions", json=deployment("f" * 30, namespace="n" * 40))
    assert refused.status_code == 400 and refused.text.startswith("Invalid service:")
    refused = client.post("/system/secrets", json={"name": "s" * 20, "value": "v", "namespace": "n" * 40})
    assert refused.status_code == 400 and refused.text.startswith("Invalid name:")


def _client(config, runtime):
    client = create_app(config, runtime).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    return client


def test_edge_containers_join_each_namespace_network_and_leave_it(config, engine):
    runtime = fake_runtime(engine, config)
    gateway = engine.add_container("gateway", {"com.openfaas.edge": "test"})
    stranger = engine.add_container("stranger", {})
    client = _client(config, runtime)
    create(client)
    assert NETWORK in engine.plain_containers[gateway]["NetworkSettings"]["Networks"]
    assert NETWORK not in engine.plain_containers[stranger]["NetworkSettings"]["Networks"]
    # A recreated nginx has none of the namespaces' networks: a later check attaches it.
    nginx = engine.add_container("nginx", {"com.openfaas.edge": "test"})
    runtime.edge.refresh_edge(force=True)
    assert NETWORK in engine.plain_containers[nginx]["NetworkSettings"]["Networks"]
    assert client.delete("/system/namespace/team-a").status_code == 200
    assert NETWORK not in engine.plain_containers[gateway]["NetworkSettings"]["Networks"]


def _namespace_configs(runtime) -> list[str]:
    return [config["ID"] for config in runtime.functions.client.api.configs(filters={"label": "com.openfaas.namespace"})]


def test_the_edge_does_not_join_a_namespace_being_deleted(config, engine):
    runtime = fake_runtime(engine, config)
    create(_client(config, runtime))
    # Another gateway process is deleting the namespace: its config is gone, its network not yet.
    for config_id in _namespace_configs(runtime):
        runtime.functions.client.api.remove_config(config_id)
    engine.add_container("nginx", {"com.openfaas.edge": "test"})
    runtime.edge.refresh_edge(force=True)
    assert not [path for method, path, _, _ in engine.requests if method == "POST" and path.endswith("/connect")]


def test_an_edge_attach_racing_a_namespace_delete_is_undone(config, engine, monkeypatch):
    """Attached to a network Swarm removes, a container keeps a copy of it on the node, which
    lists the namespace again after its delete answered 200 (seen once on the stack's fuzzer)."""
    runtime = fake_runtime(engine, config)
    create(_client(config, runtime))
    nginx = engine.add_container("nginx", {"com.openfaas.edge": "test"})
    connect = runtime.functions.client.api.connect_container_to_network

    def connect_while_deleted(container, network):
        connect(container, network)
        for config_id in _namespace_configs(runtime):  # the delete in another process begins
            runtime.functions.client.api.remove_config(config_id)

    monkeypatch.setattr(runtime.functions.client.api, "connect_container_to_network", connect_while_deleted)
    runtime.edge.refresh_edge(force=True)
    assert NETWORK not in engine.plain_containers[nginx]["NetworkSettings"]["Networks"]


def test_a_gateway_starting_attaches_its_edge_to_existing_namespaces(config, engine):
    runtime = fake_runtime(engine, config)
    create_app(config, runtime).test_client().post(
        "/system/namespace/", json={"name": "team-a"}, headers=AUTH
    )
    nginx = engine.add_container("nginx", {"com.openfaas.edge": "test"})
    fake_runtime(engine, config).health.prepare()
    assert NETWORK in engine.plain_containers[nginx]["NetworkSettings"]["Networks"]


@pytest.fixture
def routed(config, engine):
    """An app whose DNS stand-in answers for running functions of every namespace."""
    runtime = fake_runtime(engine, config)
    runtime = dataclasses.replace(runtime, logs=FakeLogSource(runtime.functions))
    upstreams = Upstreams(runtime.functions, scale_from_zero=True, wait_timeout=1, lookup=Lookup(runtime.functions))
    app = create_app(config, runtime, upstreams)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    create(client)
    client.post("/system/functions", json=deployment())
    client.post("/system/functions", json=deployment(namespace="team-a"))
    return app, client, runtime


def test_nginx_routes_each_namespace_to_its_own_pool(routed):
    _, client, _ = routed
    table = client.get("/_/routes/table").text
    assert "\npool fn_echo " in table and "\npool fn_echo.team-a " in table
    assert "\nname echo.team-a fn_echo.team-a\n" in table
    assert "\nname echo.openfaas-fn fn_echo\n" in table
    assert "echo.team-a.openfaas-fn" not in table


def test_lookups_and_scale_from_zero_use_the_namespaces_service(routed):
    _, client, runtime = routed
    asked = []
    upstreams = Upstreams(runtime.functions, scale_from_zero=True, wait_timeout=1, lookup=lambda host: asked.append(host) or [])
    assert upstreams.table(["echo", "echo.team-a"]) == {}
    assert asked == ["tasks.echo", "tasks.echo_team-a"]
    client.post("/system/scale-function/echo?namespace=team-a", json={"replicas": 0})
    woken = Upstreams(runtime.functions, scale_from_zero=True, wait_timeout=1, lookup=Lookup(runtime.functions))
    assert woken.address("echo.team-a") == "127.0.0.1:8080"
    assert runtime.functions.get_function("echo", "team-a").replicas == 1


def test_a_default_functions_addresses_leave_out_the_same_name_in_other_namespaces(routed, engine):
    """The edge is on every namespace's network, where team-a's echo is aliased ``echo``: Swarm's
    DNS answers ``tasks.echo`` with both functions' tasks; only the default one's are called."""
    _, _, runtime = routed
    subnet = network(engine, NETWORK)["IPAM"]["Config"][0]["Subnet"]
    theirs = subnet.replace("0/24", "7")
    both = {"tasks.echo": ["10.255.0.5", theirs], "tasks.echo_team-a": [theirs]}
    assert runtime.functions.function_addresses("echo", None, both.get) == ["10.255.0.5"]
    assert runtime.functions.function_addresses("echo", "team-a", both.get) == [theirs]


def test_calls_to_a_namespace_that_does_not_hold_the_function_are_404s(routed):
    _, client, _ = routed
    assert client.get("/function/echo.team-b").status_code == 404
    assert client.post("/async-function/echo.team-b").status_code == 404


def test_alerts_name_functions_of_other_namespaces_as_name_dot_namespace(routed):
    _, client, runtime = routed
    client.post("/system/functions", json=deployment("solo", namespace="team-a"))
    response = client.post("/system/alert", json=webhook(("firing", "echo.team-a"), ("firing", "solo")))
    assert response.status_code == 200, response.text
    assert "1 scaled" in response.text and "1 skipped" in response.text  # solo is team-a's, not the default's
    assert (runtime.functions.get_function("echo", "team-a").replicas, runtime.functions.get_function("echo").replicas) == (5, 1)


def test_logs_of_a_namespace_are_that_namespaces_function(routed):
    app, client, _ = routed
    logs = app.extensions["openfaas"].runtime.logs
    assert client.get("/system/logs?name=echo&namespace=team-a").status_code == 200
    assert logs.opened[-1][0].namespace == "team-a"
    client.delete("/system/functions", json={"functionName": "echo", "namespace": "team-a"})
    assert client.get("/system/logs?name=echo&namespace=team-a").status_code == 404


def test_runtime_readings_name_a_namespaced_function_by_its_name(routed):
    """Replicas of ``echo_team-a`` are echo's of team-a in stats and instances, as in events."""
    _, _, runtime = routed
    stats = {(s.function, s.namespace) for s in runtime.replicas.replica_stats()}
    assert stats == {("echo", "openfaas-fn"), ("echo", "team-a")}
    (instance,) = runtime.replicas.instances("echo", "team-a")
    assert (instance.name, instance.namespace) == ("echo", "team-a")
    assert {(s.function, s.namespace) for s in runtime.replicas.replica_stats("echo", "team-a")} == {("echo", "team-a")}
