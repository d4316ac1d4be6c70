"""SwarmProvider (app/runtime/swarm/provider.py) against the in-memory Docker Engine of tests.fakedocker.

Docker's answers become domain errors; a lost race on a service's version is retried; a secret
update rolls the functions that mount it; names that are not ours are "not found".
"""

from __future__ import annotations

import base64
import json

import pytest

from app.domain.models import LABEL_SCALE_MAX, LABEL_SCALE_MIN, FunctionDeployment
from app.errors import BackendFailure, BackendUnavailable, Conflict, InvalidRequest, NotFound
from app.runtime.swarm import specs
from app.runtime.swarm.provider import _UPDATE_ATTEMPTS
from tests.fakedocker import refused, timed_out

UPDATE = r"/services/[^/]+/update"


def fn(name: str = "echo", **extra) -> FunctionDeployment:
    return FunctionDeployment(service=name, image="docker.io/functions/alpine:latest", env_process="cat", **extra)


def replicas(engine, name: str) -> int:
    return engine.service(name)["Spec"]["Mode"]["Replicated"]["Replicas"]


def mounted(engine, name: str) -> list[str]:
    return [ref["SecretName"] for ref in engine.service(name)["Spec"]["TaskTemplate"]["ContainerSpec"].get("Secrets", [])]


# Docker's failures as domain errors


@pytest.mark.parametrize(
    "fault, error, words",
    [
        ((400, "rpc error: code = InvalidArgument desc = bad filter"), InvalidRequest, "bad filter"),
        ((404, "service echo not found"), NotFound, "service echo not found"),
        ((409, "rpc error: code = AlreadyExists desc = taken"), Conflict, "taken"),
        ((500, "rpc error: code = Unknown desc = raft failed"), BackendFailure, "raft failed"),
        ((503, "This node is not a swarm manager."), BackendUnavailable, "not a swarm manager"),
        (refused(), BackendUnavailable, "Docker is unreachable; could not list services."),
        (timed_out(), BackendUnavailable, "Docker did not answer in time; could not list services."),
    ],
)
def test_docker_answers_become_domain_errors_with_its_explanation(provider, engine, fault, error, words):
    engine.inject("GET", "/services", fault)
    with pytest.raises(error) as raised:
        provider.list_functions()
    assert type(raised.value) is error and words in raised.value.message


def test_a_function_removed_between_two_requests_is_not_found(provider, engine):
    provider.deploy(fn())
    # Another gateway removes it after our lookup: Docker's 404 for its tasks is ours.
    engine.inject("GET", "/tasks", lambda: engine._remove_service(None, {"ref": "echo"}))
    with pytest.raises(NotFound):
        provider.get_function("echo")


@pytest.mark.parametrize(
    "swarm, words",
    [
        ({"LocalNodeState": "inactive", "ControlAvailable": False}, "not part of a Swarm"),
        ({"LocalNodeState": "active", "ControlAvailable": False}, "not a Swarm manager"),
    ],
)
def test_health_needs_a_swarm_manager(provider, engine, swarm, words):
    provider.check_health()
    engine.swarm = swarm
    with pytest.raises(BackendUnavailable, match=words):
        provider.check_health()


def test_health_without_docker(provider, engine):
    engine.down = True
    with pytest.raises(BackendUnavailable, match="unreachable"):
        provider.check_health()


# the functions network


def test_ready_creates_the_functions_network_once(provider, engine):
    engine._add_network("func_functions_old", "overlay", "swarm", {}, attachable=True)  # a substring match is not it
    provider.ensure_ready()
    provider.ensure_ready()
    network = [n for n in engine.networks.values() if n["Name"] == "func_functions"]
    assert len(network) == 1 and network[0]["Attachable"] and network[0]["Driver"] == "overlay"
    assert engine.count("POST", "/networks/create") == 1


def test_a_network_created_meanwhile_by_another_gateway_is_fine(provider, engine):
    engine.inject("POST", "/networks/create", lambda: engine._add_network("func_functions", "overlay", "swarm", {}, True))
    provider.ensure_ready()
    assert [n["Name"] for n in engine.networks.values()].count("func_functions") == 1


# reading functions


def test_only_services_labelled_as_functions_are_functions(provider, engine):
    provider.deploy(fn("echo"))
    provider.deploy(fn("echo2"))
    engine.create_service({"Name": "other", "TaskTemplate": {"ContainerSpec": {"Image": "nginx"}}})
    assert [f.name for f in provider.list_functions()] == ["echo", "echo2"]
    with pytest.raises(NotFound):
        provider.get_function("other")
    with pytest.raises(NotFound):
        provider.get_function("ech")  # Docker's name filter matches the prefix of echo
    with pytest.raises(NotFound):
        provider.delete("other")
    assert engine.service("other")


def test_listing_costs_the_same_few_requests_for_any_number_of_functions(provider, engine):
    counts = []
    for count in (1, 6):
        for n in range(count):
            provider.deploy(fn(f"fn{count}-{n}"))
        before = len(engine.requests)
        provider.list_functions()
        counts.append(len(engine.requests) - before)
    assert counts[0] == counts[1] == 2


@pytest.mark.parametrize("state, available", [("running", 2), ("pending", 0)])
def test_available_replicas_are_running_tasks(provider, engine, state, available):
    engine.task_state = state
    provider.deploy(fn(labels={LABEL_SCALE_MIN: "2"}))
    status = provider.get_function("echo")
    assert (status.replicas, status.available_replicas) == (2, available)


def test_tasks_by_full_or_unique_partial_id_of_that_function_only(provider, engine):
    provider.deploy(fn("echo"))
    provider.deploy(fn("other"))
    task = engine.running_tasks("echo")[0]["ID"]
    assert provider.function_task("echo", task)["ID"] == task
    assert provider.function_task("echo", task[:6])["ID"] == task
    with pytest.raises(NotFound, match="Instance"):
        provider.function_task("other", task)


def test_cpu_seconds_of_the_replicas_this_node_can_measure(provider, engine):
    provider.deploy(fn(labels={LABEL_SCALE_MIN: "3"}))
    here, elsewhere, starting = engine.running_tasks("echo")
    engine.cpu_usage[here["Status"]["ContainerStatus"]["ContainerID"]] = 2_500_000_000
    # A replica on another node: Docker here has no such container (404), so it is left out.
    del engine.cpu_usage[elsewhere["Status"]["ContainerStatus"]["ContainerID"]]
    starting["Status"]["State"] = "starting"
    assert {(r.instance, r.cpu_seconds) for r in provider.replica_stats("echo")} == {(here["ID"], 2.5)}
    with pytest.raises(NotFound):
        provider.replica_stats("ghost")


# deploying, updating, scaling, removing


def test_deploy_creates_the_service_the_spec_builder_describes(provider, engine):
    provider.deploy(fn(labels={LABEL_SCALE_MIN: "3"}))
    service = engine.service("echo")
    assert service["Spec"]["Labels"][specs.LABEL_FUNCTION] == "echo"
    assert service["Spec"]["TaskTemplate"]["Networks"] == [{"Target": "func_functions"}]
    assert replicas(engine, "echo") == 3 and len(engine.running_tasks("echo")) == 3


def test_deploy_sends_registry_credentials_for_the_image_registry(provider, engine):
    provider.deploy(FunctionDeployment(service="echo", image="registry.example:5000/fn:1",
                                       registry_auth=base64.b64encode(b"user:pw").decode()))
    headers = [h for m, p, _, h in engine.requests if (m, p) == ("POST", "/services/create")][-1]
    auth = json.loads(base64.urlsafe_b64decode(headers["X-Registry-Auth"]))
    assert auth == {"username": "user", "password": "pw", "serveraddress": "registry.example:5000"}


@pytest.mark.parametrize(
    "existing, words",
    [
        ("function", "Function echo already exists in namespace openfaas-fn; use PUT to update it."),
        ("service", "A Docker service named echo exists and is not an OpenFaaS function."),
    ],
)
def test_deploying_a_taken_name_is_a_conflict_saying_who_has_it(provider, engine, existing, words):
    if existing == "function":
        provider.deploy(fn())
    else:
        engine.create_service({"Name": "echo", "TaskTemplate": {"ContainerSpec": {"Image": "nginx"}}})
    with pytest.raises(Conflict) as raised:
        provider.deploy(fn())
    assert raised.value.message == words


@pytest.mark.parametrize(
    "deployment, error, words",
    [
        (fn(secrets=["ghost"]), NotFound, "Secret ghost not found"),
        (fn(network="nowhere"), InvalidRequest, "network nowhere does not exist"),
        (fn("bad.name"), InvalidRequest, "DNS name component"),  # Docker's 400 keeps its words
    ],
)
def test_deploy_refusals(provider, engine, deployment, error, words):
    with pytest.raises(error, match=words):
        provider.deploy(deployment)
    assert engine.services == {}


def test_update_keeps_the_replica_count_and_rolls_the_tasks(provider, engine):
    provider.deploy(fn())
    provider.scale("echo", 4)
    old = {t["ID"] for t in engine.running_tasks("echo")}
    provider.update(fn(env_vars={"A": "1"}))
    assert replicas(engine, "echo") == 4
    assert "A=1" in engine.service("echo")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert not old & {t["ID"] for t in engine.running_tasks("echo")}


def test_update_of_an_unknown_function_is_not_found(provider, engine):
    with pytest.raises(NotFound, match="Function ghost not found"):
        provider.update(fn("ghost"))


@pytest.mark.parametrize("action", ["update", "scale"])
def test_a_concurrent_change_of_the_version_is_retried(provider, engine, action):
    provider.deploy(fn())
    # Another client updates the service between our read and our write: Docker refuses ours.
    engine.inject("POST", UPDATE, lambda: engine.touch("echo"), times=_UPDATE_ATTEMPTS - 1)
    if action == "update":
        provider.update(fn(env_vars={"A": "1"}))
        assert "A=1" in engine.service("echo")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    else:
        assert provider.scale("echo", 3) == 3 and replicas(engine, "echo") == 3
    assert engine.count("POST", UPDATE) == _UPDATE_ATTEMPTS


def test_a_version_conflict_that_never_ends_is_given_up(provider, engine):
    provider.deploy(fn())
    engine.inject("POST", UPDATE, lambda: engine.touch("echo"), times=None)
    with pytest.raises(BackendFailure, match="out of sequence"):
        provider.scale("echo", 3)
    assert engine.count("POST", UPDATE) == _UPDATE_ATTEMPTS


def test_other_update_failures_are_not_retried(provider, engine):
    provider.deploy(fn())
    engine.inject("POST", UPDATE, (500, "rpc error: code = Unknown desc = raft failed"))
    with pytest.raises(BackendFailure, match="raft failed"):
        provider.scale("echo", 3)
    assert engine.count("POST", UPDATE) == 1


def test_scale_honours_a_maximum_and_skips_a_change_that_changes_nothing(provider, engine):
    provider.deploy(fn(labels={LABEL_SCALE_MAX: "5"}))
    assert provider.scale("echo", 50) == 5
    version = engine.service("echo")["Version"]
    assert provider.scale("echo", 5) == 5
    assert engine.service("echo")["Version"] == version  # no update sent: nothing restarts
    assert provider.scale("echo", 0) == 0 and engine.running_tasks("echo") == []


def test_delete_removes_the_service_and_its_tasks(provider, engine):
    provider.deploy(fn())
    provider.delete("echo")
    assert engine.services == {} and engine.tasks == {}
    with pytest.raises(NotFound):
        provider.delete("echo")


# secrets


def test_secrets_are_versions_owned_by_openfaas(provider, engine):
    engine.create_secret("foreign", b"x")
    labels = {specs.SECRET_OWNER_LABEL: "someone", specs.SECRET_NAME_LABEL: "o", specs.SECRET_VERSION_LABEL: "1"}
    engine.create_secret("other-owner", b"x", labels)
    provider.create_secret("api-key", b"v1")
    assert provider.list_secrets() == ["api-key"]
    assert engine.secret_value("api-key-v1") == b"v1"
    with pytest.raises(Conflict, match="already exists"):
        provider.create_secret("api-key", b"again")


def test_a_docker_secret_of_the_same_name_outside_openfaas_is_a_conflict(provider, engine):
    engine.create_secret("api-key-v1", b"x")
    with pytest.raises(Conflict, match="outside OpenFaaS"):
        provider.create_secret("api-key", b"v1")


def test_update_rolls_every_function_mounting_the_secret_and_only_those(provider, engine):
    provider.create_secret("api-key", b"v1")
    provider.create_secret("other", b"o")
    provider.deploy(fn("a", secrets=["api-key", "other"]))
    provider.deploy(fn("b", secrets=["api-key"]))
    provider.deploy(fn("c", secrets=["other"]))
    # Another client scales b between our read of it and our update: it must still move.
    engine.inject("POST", rf"/services/{engine.service('b')['ID']}/update", lambda: engine.touch("b"))
    untouched = engine.service("c")["Version"]
    provider.update_secret("api-key", b"v2")
    assert mounted(engine, "a") == ["api-key-v2", "other-v1"]
    assert mounted(engine, "b") == ["api-key-v2"]
    assert mounted(engine, "c") == ["other-v1"] and engine.service("c")["Version"] == untouched
    assert sorted(s["Spec"]["Name"] for s in engine.secrets.values()) == ["api-key-v2", "other-v1"]
    assert engine.secret_value("api-key-v2") == b"v2"
    assert provider.get_function("a").secrets == ["api-key", "other"]


def test_a_function_that_cannot_be_moved_is_named_and_the_others_still_move(provider, engine):
    provider.create_secret("api-key", b"v1")
    provider.deploy(fn("a", secrets=["api-key"]))
    provider.deploy(fn("b", secrets=["api-key"]))
    b = engine.service("b")["ID"]
    engine.inject("POST", rf"/services/{b}/update", (500, "rpc error: code = Unknown desc = raft failed"))
    with pytest.raises(BackendFailure, match="functions b could not be moved onto it; retry the update"):
        provider.update_secret("api-key", b"v2")
    assert (mounted(engine, "a"), mounted(engine, "b")) == (["api-key-v2"], ["api-key-v1"])
    # The old version is still mounted by b, so Docker refuses to remove it; a retry finishes.
    assert {s["Spec"]["Name"] for s in engine.secrets.values()} == {"api-key-v1", "api-key-v2"}
    provider.update_secret("api-key", b"v3")
    assert (mounted(engine, "a"), mounted(engine, "b")) == (["api-key-v3"], ["api-key-v3"])
    assert {s["Spec"]["Name"] for s in engine.secrets.values()} == {"api-key-v3"}


def test_update_of_an_unknown_secret_is_not_found(provider):
    with pytest.raises(NotFound, match="Secret ghost not found"):
        provider.update_secret("ghost", b"x")


def test_delete_refuses_a_secret_in_use_naming_the_functions(provider, engine):
    provider.create_secret("api-key", b"v1")
    provider.deploy(fn("a", secrets=["api-key"]))
    provider.deploy(fn("b", secrets=["api-key"]))
    with pytest.raises(Conflict, match="in use by functions a, b"):
        provider.delete_secret("api-key")
    provider.delete("a")
    provider.delete("b")
    provider.delete_secret("api-key")
    assert engine.secrets == {}
    with pytest.raises(NotFound):
        provider.delete_secret("api-key")


def test_delete_of_a_secret_a_foreign_service_mounts_is_a_conflict(provider, engine):
    provider.create_secret("api-key", b"v1")
    secret = next(iter(engine.secrets.values()))
    engine.create_service({"Name": "other", "TaskTemplate": {"ContainerSpec": {"Image": "nginx", "Secrets": [
        {"File": {"Name": "/run/k"}, "SecretID": secret["ID"], "SecretName": "api-key-v1"}]}}})
    with pytest.raises(Conflict, match="still in use.*other"):
        provider.delete_secret("api-key")
