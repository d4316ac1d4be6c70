"""The running stack (nginx, gunicorn, Swarm) against the document it serves, fuzzed.

Bounded: a few cases per management operation, valid and invalid, then stateful scenarios that
follow the document's links (deploy, then read, scale, update, delete; create a secret, then
update and delete it). The proxy routes are left to the in-process run, which has a function
stand-in; here their calls would mostly wait out the scale-from-zero deadline for images that
cannot be pulled. Every function and secret the fuzzer creates is removed afterwards.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.specs.openapi.checks import ensure_resource_availability, use_after_free

from app.domain.models import LABEL_FUNCTION, LABEL_NAMESPACE
from app.runtime.swarm.naming import SECRET_OWNER_LABEL
from tests.e2e.stack import auth
from tests.fuzzing import CHECKS
from tests.gateway import call
from tests.waiting import wait_for

CASES_PER_OPERATION = 8
SCENARIOS, STEPS = 12, 6


def _owned(docker_api) -> dict[str, set[str]]:
    """IDs of the function services, gateway secrets and namespaces (a network and a config
    each) on this Swarm, by kind, in the order they can be removed."""
    return {
        "service": {svc["ID"] for svc in docker_api.services(filters={"label": LABEL_FUNCTION})},
        "secret": {secret["ID"] for secret in docker_api.secrets(filters={"label": SECRET_OWNER_LABEL})},
        "config": {config["ID"] for config in docker_api.configs(filters={"label": LABEL_NAMESPACE})},
        "network": {network["Id"] for network in docker_api.networks(filters={"label": LABEL_NAMESPACE})},
    }


def _remove_new(docker_api, stack, before: dict[str, set[str]]) -> None:
    """Remove every function, secret and namespace that is not in ``before``: the fuzzer's own
    (it names them at random, so what appeared during the test is how they are known). Until
    none is left: a namespace network once outlived a clean-up that had answered 200."""

    def left() -> bool:
        now = _owned(docker_api)
        if all(now[kind] <= before[kind] for kind in now):
            return True
        _remove_once(docker_api, stack, before, now)
        return False

    wait_for(left, timeout=120, interval=1, what="the fuzzer's functions, secrets and namespaces to be removed")


def _remove_once(docker_api, stack, before: dict[str, set[str]], now: dict[str, set[str]]) -> None:
    for service in now["service"] - before["service"]:
        docker_api.remove_service(service)
    for secret in now["secret"] - before["secret"]:
        docker_api.remove_secret(secret)
    for network in now["network"] - before["network"]:
        # Through the gateway, which detaches its own containers (and nginx) first; a removed
        # function's task holds the network for a moment (409 until then).
        namespace = docker_api.inspect_network(network)["Labels"][LABEL_NAMESPACE]
        url = f"{stack.url}/system/namespace/{namespace}"
        wait_for(lambda: call(url, "DELETE", headers=auth(stack))[0] in (200, 404), timeout=60,
                 what=f"namespace {namespace} to be removed")
    for config in _owned(docker_api)["config"] - before["config"]:
        docker_api.remove_config(config)


@pytest.fixture
def fuzz_cleanup(docker_api, stack):
    """Remove every function, secret and namespace that appeared during the test."""
    before = _owned(docker_api)
    yield
    _remove_new(docker_api, stack, before)


def _schema(stack):
    config = schemathesis.Config.from_dict(
        {
            "seed": 7002,
            "base-url": stack.url,
            "auth": {"basic": {"username": stack.user, "password": stack.password}},
            "generation": {"mode": "all"},
        }
    )
    return schemathesis.openapi.from_url(f"{stack.url}/openapi.yaml", config=config).exclude(
        path_regex="^/(async-)?function/"
    )


@pytest.mark.usefixtures("fuzz_cleanup")
def test_stack_meets_its_document(stack):
    schema = _schema(stack)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 15
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=CASES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def check(case):
                case.call_and_validate(checks=CHECKS)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                # No invalid request exists for an operation without parameters or body.
                assert mode is schemathesis.GenerationMode.NEGATIVE


@pytest.mark.usefixtures("fuzz_cleanup")
def test_stack_follows_the_documents_links(stack, docker_api):
    before = _owned(docker_api)

    class Scenario(_schema(stack).as_state_machine()):
        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # A deleted function or secret reads as 404; one just created can be read.
            case.validate_response(response, checks=CHECKS + [use_after_free, ensure_resource_availability])

        def teardown(self):
            # Every scenario starts from the same Swarm: Hypothesis replays scenarios and refuses
            # ones whose requests change with what an earlier one left behind (a 409 instead of
            # a 202 takes another link).
            _remove_new(docker_api, stack, before)

    Scenario.run(
        settings=hypothesis.settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
