"""Functions as Swarm services (app/runtime/swarm/function_services.py) against the in-memory
Docker Engine: listing at a constant cost, deploy, update, scale and delete."""

from __future__ import annotations

import base64
import json

import pytest

from app.config import Config
from app.domain.models import LABEL_SCALE_MAX, LABEL_SCALE_MIN, FunctionDeployment, Namespace
from app.errors import Conflict, InvalidRequest, NotFound
from app.runtime.swarm import specs
from app.runtime.swarm.assembly import swarm_runtime
from tests.fakes import fn, replicas
from tests.waiting import wait_for


def _asked(engine, before: int) -> list[str]:
    """The paths of the requests sent to Docker since ``before``, but the service cache's
    /events stream (app.runtime.swarm.service_cache)."""
    return [path for _, path, _, _ in engine.requests[before:] if path != "/events"]


def test_listing_costs_the_same_few_requests_for_any_number_of_functions(runtime, engine):
    counts = []
    for count in (1, 6):
        for n in range(count):
            runtime.functions.deploy(fn(f"fn{count}-{n}"))
        before = len(engine.requests)
        runtime.functions.list_functions()
        counts.append(len(_asked(engine, before)))
    assert counts[0] == counts[1] == 2


def test_services_are_listed_again_only_after_a_change(runtime, engine):
    runtime.functions.deploy(fn("a"))

    def services_kept() -> bool:
        before = len(engine.requests)
        assert [f.name for f in runtime.functions.list_functions()] == ["a"]
        return _asked(engine, before) == ["/tasks"]

    # Kept once the cache follows Docker's events (from its first read on).
    wait_for(services_kept, timeout=5, what="the services to be kept")
    assert services_kept()
    # A change made here is seen at once, one made by another process of this gateway too (the
    # stamp in state_dir), and one made behind the gateway's back once Docker reports it.
    runtime.functions.deploy(fn("b"))
    assert [f.name for f in runtime.functions.list_functions()] == ["a", "b"]
    other = swarm_runtime(Config(), engine.client())
    other.functions.deploy(fn("c"))
    assert [f.name for f in runtime.functions.list_functions()] == ["a", "b", "c"]
    engine.client().remove_service(engine.service("a")["ID"])
    wait_for(lambda: [f.name for f in runtime.functions.list_functions()] == ["b", "c"], timeout=5,
             what="the removal to be seen")


def test_a_listing_that_needs_no_availability_asks_docker_for_nothing_once_services_are_kept(runtime, engine):
    runtime.functions.deploy(fn("a", labels={LABEL_SCALE_MIN: "2"}))

    def asked() -> list[str]:
        before = len(engine.requests)
        [status] = runtime.functions.list_functions(available=False)
        assert (status.name, status.replicas, status.available_replicas) == ("a", 2, 0)
        return _asked(engine, before)

    wait_for(lambda: asked() == [], timeout=5, what="the services to be kept")
    # Asked for, availability is read again from the running tasks.
    assert [f.available_replicas for f in runtime.functions.list_functions()] == [2]


def test_a_listing_without_availability_is_kept_until_a_service_changes(runtime, engine):
    runtime.functions.deploy(fn("a"))
    lookup = runtime.functions.lookup
    wait_for(lambda: lookup.function_services() is lookup.function_services(), timeout=5,
             what="the services to be kept")
    runtime.functions.list_functions(available=False)
    kept = runtime.functions.list_functions(available=False)
    kept.clear()  # each caller gets a list of its own
    again = runtime.functions.list_functions(available=False)
    assert [f.name for f in again] == ["a"]
    assert again[0] is runtime.functions.list_functions(available=False)[0]
    runtime.functions.deploy(fn("b"))
    assert [f.name for f in runtime.functions.list_functions(available=False)] == ["a", "b"]


@pytest.mark.parametrize("state, available", [("running", 2), ("pending", 0)])
def test_available_replicas_are_running_tasks(runtime, engine, state, available):
    engine.task_state = state
    runtime.functions.deploy(fn(labels={LABEL_SCALE_MIN: "2"}))
    status = runtime.functions.get_function("echo")
    assert (status.replicas, status.available_replicas) == (2, available)


def test_deploy_creates_the_service_the_spec_builder_describes(runtime, engine):
    runtime.functions.deploy(fn(labels={LABEL_SCALE_MIN: "3"}))
    service = engine.service("echo")
    assert service["Spec"]["Labels"][specs.LABEL_FUNCTION] == "echo"
    assert service["Spec"]["TaskTemplate"]["Networks"] == [{"Target": "func_functions"}]
    assert replicas(engine, "echo") == 3 and len(engine.running_tasks("echo")) == 3


def test_deploy_sends_registry_credentials_for_the_image_registry(runtime, engine):
    runtime.functions.deploy(
        FunctionDeployment(
            service="echo", image="registry.example:5000/fn:1", registry_auth=base64.b64encode(b"user:pw").decode()
        )
    )
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
def test_deploying_a_taken_name_is_a_conflict_saying_who_has_it(runtime, engine, existing, words):
    if existing == "function":
        runtime.functions.deploy(fn())
    else:
        engine.create_service({"Name": "echo", "TaskTemplate": {"ContainerSpec": {"Image": "nginx"}}})
    with pytest.raises(Conflict) as raised:
        runtime.functions.deploy(fn())
    assert raised.value.message == words


@pytest.mark.parametrize(
    "deployment, error, words",
    [
        (fn(secrets=["ghost"]), NotFound, "Secret ghost not found"),
        (fn(network="nowhere"), InvalidRequest, "network nowhere does not exist"),
        (fn("bad.name"), InvalidRequest, "DNS name component"),  # Docker's 400 keeps its words
    ],
)
def test_deploy_refusals(runtime, engine, deployment, error, words):
    with pytest.raises(error, match=words):
        runtime.functions.deploy(deployment)
    assert engine.services == {}


def test_update_keeps_the_replica_count_and_rolls_the_tasks(runtime, engine):
    runtime.functions.deploy(fn())
    runtime.functions.scale("echo", 4)
    old = {t["ID"] for t in engine.running_tasks("echo")}
    runtime.functions.update(fn(env_vars={"A": "1"}))
    assert replicas(engine, "echo") == 4
    assert "A=1" in engine.service("echo")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert not old & {t["ID"] for t in engine.running_tasks("echo")}


def test_update_of_an_unknown_function_is_not_found(runtime, engine):
    with pytest.raises(NotFound, match="Function ghost not found"):
        runtime.functions.update(fn("ghost"))


def test_scale_honours_a_maximum_and_skips_a_change_that_changes_nothing(runtime, engine):
    runtime.functions.deploy(fn(labels={LABEL_SCALE_MAX: "5"}))
    assert runtime.functions.scale("echo", 50) == 5
    version = engine.service("echo")["Version"]
    assert runtime.functions.scale("echo", 5) == 5
    assert engine.service("echo")["Version"] == version  # no update sent: nothing restarts
    assert runtime.functions.scale("echo", 0) == 0 and engine.running_tasks("echo") == []


def test_delete_removes_the_service_and_its_tasks(runtime, engine):
    runtime.functions.deploy(fn())
    runtime.functions.delete("echo")
    assert engine.services == {} and engine.tasks == {}
    with pytest.raises(NotFound):
        runtime.functions.delete("echo")


def test_update_changes_the_function_of_its_own_namespace_only(runtime, engine):
    runtime.namespaces.create_namespace(Namespace("team-a"))
    runtime.functions.deploy(fn())
    runtime.functions.deploy(fn(namespace="team-a"))
    runtime.functions.update(fn(namespace="team-a", env_vars={"A": "1"}))
    assert "A=1" in engine.service("echo_team-a")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "A=1" not in (engine.service("echo")["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or [])


def test_endpoints_list_every_function_with_its_running_replicas_at_a_constant_cost(runtime, engine):
    runtime.functions.deploy(fn("a", labels={LABEL_SCALE_MIN: "2"}))
    runtime.functions.deploy(fn("b", namespace=None))
    before = len(engine.requests)
    found = {function.name: function for function in runtime.functions.function_endpoints()}
    assert len(_asked(engine, before)) == 2
    assert [(t.id, t.current, t.draining) for t in found["a"].tasks] == sorted(
        (t["ID"], True, False) for t in engine.running_tasks("a"))
    assert all(t.address.startswith("10.0.") for t in found["a"].tasks)
    assert not found["a"].can_roll_back and found["a"].updated_at is None


def test_a_rollback_puts_the_previous_spec_back_once(runtime, engine):
    runtime.functions.deploy(fn(env_vars={"version": "1"}, labels={"team": "a"}))
    runtime.functions.update(fn(env_vars={"version": "2"}, labels={"team": "b"}))
    (function,) = runtime.functions.function_endpoints()
    assert function.can_roll_back and function.updated_at is not None
    with pytest.raises(Conflict):
        runtime.functions.roll_back("echo", "openfaas-fn", function.version - 1, "why")  # changed since judged
    runtime.functions.roll_back("echo", "openfaas-fn", function.version, "no new replica became ready")
    status = runtime.functions.get_function("echo")
    assert (status.env_vars, status.labels["team"]) == ({"version": "1"}, "a")
    assert (status.rollout.state, status.rollout.message) == ("rolled_back", "no new replica became ready")
    (function,) = runtime.functions.function_endpoints()
    assert not function.can_roll_back  # never back to what was given up
    with pytest.raises(Conflict):
        runtime.functions.roll_back("echo", "openfaas-fn", function.version, "again")
    runtime.functions.update(fn(env_vars={"version": "3"}))
    assert runtime.functions.get_function("echo").rollout.state == "completed"


def test_a_status_is_read_again_only_when_its_service_or_tasks_changed(runtime, engine):
    runtime.functions.deploy(fn("a"))
    runtime.functions.deploy(fn("b"))
    first = {f.name: f for f in runtime.functions.list_functions()}
    # A list without availability between two with it (the API, the routing table and the time
    # series take turns) keeps both lists' statuses.
    without = {f.name: f for f in runtime.functions.list_functions(available=False)}
    again = {f.name: f for f in runtime.functions.list_functions()}
    assert again["a"] is first["a"] and again["b"] is first["b"]
    assert {f.name: f for f in runtime.functions.list_functions(available=False)} == without
    assert all(f is without[f.name] for f in runtime.functions.list_functions(available=False))
    runtime.functions.scale("a", 3)
    scaled = {f.name: f for f in runtime.functions.list_functions()}
    assert scaled["b"] is first["b"] and (scaled["a"].replicas, scaled["a"].available_replicas) == (3, 3)
    engine.task_state = "pending"  # a task that changes alone (the service does not) counts too
    engine.kill(engine.running_tasks("b")[0]["ID"])
    assert {f.name: f.available_replicas for f in runtime.functions.list_functions()} == {"a": 3, "b": 0}
