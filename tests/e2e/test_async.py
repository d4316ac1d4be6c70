"""Async calls survive a SIGKILL of the gateway: every accepted call reaches its callback."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.stack import delivered, deploy, deploy_receiver, invoke, stack_on_redis
from tests.swarm import shared_name
from tests.waiting import wait_for

CALLS = 50


def _gateway_container(stack) -> str:
    return subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={stack.env['COMPOSE_PROJECT_NAME']}",
         "--filter", "label=com.docker.compose.service=gateway"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[0]


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, stack, tmp_path):
    """The stack with each queue backend; Redis is a server of the test's own, on the host."""
    if request.param == "sqlite":
        yield stack
        return
    with stack_on_redis(stack, tmp_path) as (with_redis, _):
        yield with_redis


def test_accepted_calls_are_delivered_after_the_gateway_is_killed(backend, watchdog_image):
    stack = backend
    kind = stack.env.get("ASYNC_QUEUE", "sqlite")[:5]
    slow, receiver = shared_name(f"slow-{kind}"), shared_name(f"receiver-{kind}")
    deploy(stack, slow, "sleep 1; echo done")
    deploy_receiver(stack, receiver)
    accepted = set()
    for number in range(CALLS):
        status, headers, _ = invoke(
            stack, f"/async-function/{slow}", "POST", f"call {number}".encode(),
            {"X-Callback-Url": f"http://{receiver}:8080/callback"},
        )
        assert status == 202
        accepted.add(headers["X-Call-Id"])
    assert len(accepted) == CALLS

    subprocess.run(["docker", "kill", "-s", "KILL", _gateway_container(stack)], check=True, capture_output=True)
    restarted = stack.make("up")
    assert restarted.returncode == 0, restarted.stderr[-3000:]

    wait_for(lambda: accepted <= delivered(stack, receiver, slow), timeout=180, interval=2, what=f"all {CALLS} callbacks")
