"""The Swarm adapter's client (app/runtime/swarm/client.py) against the in-memory Docker Engine of
tests.fakedocker: Docker's answers become domain errors with its own explanation; health needs a
Swarm manager."""

from __future__ import annotations

import pytest

from app.errors import BackendFailure, BackendUnavailable, Conflict, InvalidRequest, NotFound
from tests.fakedocker import refused, timed_out
from tests.fakes import fn


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
def test_docker_answers_become_domain_errors_with_its_explanation(runtime, engine, fault, error, words):
    engine.inject("GET", "/services", fault)
    with pytest.raises(error) as raised:
        runtime.functions.list_functions()
    assert type(raised.value) is error and words in raised.value.message


def test_a_function_removed_between_two_requests_is_not_found(runtime, engine):
    runtime.functions.deploy(fn())
    # Another gateway removes it after our lookup: Docker's 404 for its tasks is ours.
    engine.inject("GET", "/tasks", lambda: engine._remove_service(None, {"ref": "echo"}))
    with pytest.raises(NotFound):
        runtime.functions.get_function("echo")


@pytest.mark.parametrize(
    "swarm, words",
    [
        ({"LocalNodeState": "inactive", "ControlAvailable": False}, "not part of a Swarm"),
        ({"LocalNodeState": "active", "ControlAvailable": False}, "not a Swarm manager"),
    ],
)
def test_health_needs_a_swarm_manager(runtime, engine, swarm, words):
    runtime.health.check_health()
    engine.swarm = swarm
    with pytest.raises(BackendUnavailable, match=words):
        runtime.health.check_health()


def test_health_without_docker(runtime, engine):
    engine.down = True
    with pytest.raises(BackendUnavailable, match="unreachable"):
        runtime.health.check_health()
