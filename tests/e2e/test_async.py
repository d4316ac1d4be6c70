"""Async calls survive a SIGKILL of the gateway: every accepted call reaches its callback, and its
record says so."""

from __future__ import annotations

import json
import subprocess

from tests.e2e.stack import auth, container, delivered, deploy, deploy_receiver, invoke
from tests.gateway import call
from tests.swarm import shared_name
from tests.waiting import wait_for

CALLS = 50


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

    subprocess.run(["docker", "kill", "-s", "KILL", container(stack, "gateway")], check=True, capture_output=True)
    restarted = stack.make("up")
    assert restarted.returncode == 0, restarted.stderr[-3000:]

    wait_for(lambda: accepted <= delivered(stack, receiver, slow), timeout=180, interval=2, what=f"all {CALLS} callbacks")
    for call_id in accepted:
        status, text, _ = call(f"{stack.url}/system/async-calls/{call_id}", headers=auth(stack))
        record = json.loads(text)
        assert status == 200 and (record["state"], record["callbackDelivered"]) == ("succeeded", True), text
        assert record["result"]["body"] == "done\n", text
