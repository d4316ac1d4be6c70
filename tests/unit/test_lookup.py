"""Finding the gateway's own services and tasks (app/runtime/swarm/lookup.py): names that are not
ours are "not found"; a lost race on a service's version is retried, a failure is not."""

from __future__ import annotations

import pytest

from app.config import Config
from app.domain.models import Namespace
from app.errors import BackendFailure, NotFound
from app.runtime.swarm.client import SwarmClient
from app.runtime.swarm.lookup import UPDATE_ATTEMPTS, Lookup
from tests.fakes import UPDATE, fn, replicas


@pytest.fixture
def lookup(engine) -> Lookup:
    return Lookup(SwarmClient(Config(), engine.client()))


def test_only_services_labelled_as_functions_are_functions(runtime, engine):
    runtime.functions.deploy(fn("echo"))
    runtime.functions.deploy(fn("echo2"))
    engine.create_service({"Name": "other", "TaskTemplate": {"ContainerSpec": {"Image": "nginx"}}})
    assert [f.name for f in runtime.functions.list_functions()] == ["echo", "echo2"]
    with pytest.raises(NotFound):
        runtime.functions.get_function("other")
    with pytest.raises(NotFound):
        runtime.functions.get_function("ech")  # Docker's name filter matches the prefix of echo
    with pytest.raises(NotFound):
        runtime.functions.delete("other")
    assert engine.service("other")


def test_tasks_by_full_or_unique_partial_id_of_that_function_only(runtime, engine, lookup):
    runtime.functions.deploy(fn("echo"))
    runtime.functions.deploy(fn("other"))
    task = engine.running_tasks("echo")[0]["ID"]
    assert lookup.function_task("echo", task)["ID"] == task
    assert lookup.function_task("echo", task[:6])["ID"] == task
    with pytest.raises(NotFound, match="Instance"):
        lookup.function_task("other", task)


@pytest.mark.parametrize("action", ["update", "scale"])
def test_a_concurrent_change_of_the_version_is_retried(runtime, engine, action):
    runtime.functions.deploy(fn())
    # Another client updates the service between our read and our write: Docker refuses ours.
    engine.inject("POST", UPDATE, lambda: engine.touch("echo"), times=UPDATE_ATTEMPTS - 1)
    if action == "update":
        runtime.functions.update(fn(env_vars={"A": "1"}))
        assert "A=1" in engine.service("echo")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    else:
        assert runtime.functions.scale("echo", 3) == 3 and replicas(engine, "echo") == 3
    assert engine.count("POST", UPDATE) == UPDATE_ATTEMPTS


def test_a_version_conflict_that_never_ends_is_given_up(runtime, engine):
    runtime.functions.deploy(fn())
    engine.inject("POST", UPDATE, lambda: engine.touch("echo"), times=None)
    with pytest.raises(BackendFailure, match="out of sequence"):
        runtime.functions.scale("echo", 3)
    assert engine.count("POST", UPDATE) == UPDATE_ATTEMPTS


def test_other_update_failures_are_not_retried(runtime, engine):
    runtime.functions.deploy(fn())
    engine.inject("POST", UPDATE, (500, "rpc error: code = Unknown desc = raft failed"))
    with pytest.raises(BackendFailure, match="raft failed"):
        runtime.functions.scale("echo", 3)
    assert engine.count("POST", UPDATE) == 1


def test_a_task_is_looked_up_in_its_functions_namespace(runtime, engine, lookup):
    runtime.namespaces.create_namespace(Namespace("team-a"))
    runtime.functions.deploy(fn())
    runtime.functions.deploy(fn(namespace="team-a"))
    task = engine.running_tasks("echo_team-a")[0]["ID"]
    assert lookup.function_task("echo", task, "team-a")["ID"] == task
    with pytest.raises(NotFound):
        lookup.function_task("echo", task)
