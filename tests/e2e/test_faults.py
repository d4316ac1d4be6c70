"""Faults the stack must survive, with real parts: Redis going away under async calls, a function
task killed while calls are in flight, and no credential or secret value in any log line or
error body. (Docker itself going away is in tests/integration/test_docker_restart.py.)"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import threading

from harness import basic_auth
from tests.e2e.stack import auth, delivered, deploy, deploy_receiver, invoke, stack_on_redis
from tests.gateway import call
from tests.swarm import shared_name
from tests.waiting import wait_for

# What the gateway's async worker logs when it cannot reach its queue.
QUEUE_DOWN = "async queue unavailable"


def _accept(stack, function: str, receiver: str, count: int) -> set[str]:
    accepted = set()
    for number in range(count):
        status, headers, body = invoke(
            stack, f"/async-function/{function}", "POST", f"call {number}".encode(),
            {"X-Callback-Url": f"http://{receiver}:8080/callback"},
        )
        assert status == 202, body
        accepted.add(headers["X-Call-Id"])
    return accepted


def test_async_calls_are_refused_while_redis_is_down_and_none_is_lost(stack, watchdog_image, tmp_path):
    with stack_on_redis(stack, tmp_path) as (stack, redis):
        slow, receiver = shared_name("redis-slow"), shared_name("redis-receiver")
        deploy(stack, slow, "sleep 1; echo done")
        deploy_receiver(stack, receiver)
        accepted = _accept(stack, slow, receiver, 12)

        # Down while calls are queued and some are being made: their acks fail, they stay stored.
        noticed = _stack_logs(stack).count(QUEUE_DOWN)
        redis.stop(signal.SIGKILL)
        status, headers, body = invoke(stack, f"/async-function/{slow}", "POST", b"refused")
        assert status == 503, body
        assert headers["Content-Type"].startswith("text/plain") and b"async queue" in body
        # Up again only once the workers have failed to reach it.
        wait_for(lambda: _stack_logs(stack).count(QUEUE_DOWN) > noticed, timeout=30, what="a worker to find Redis down")
        redis.start()

        accepted |= _accept(stack, slow, receiver, 4)
        wait_for(lambda: accepted <= delivered(stack, receiver, slow), timeout=180, interval=2, what="all 16 callbacks")


def _containers(service: str) -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()


def test_a_task_killed_mid_call_gives_502_and_later_calls_reach_the_others(stack, watchdog_image):
    fn = shared_name("victim")
    # Slow only when asked, so the calls after the kill are quick.
    deploy(stack, fn, 'if [ -n "$Http_X_Slow" ]; then sleep 3; fi; hostname')
    assert call(f"{stack.url}/system/scale-function/{fn}", "POST", {"serviceName": fn, "replicas": 2}, auth(stack))[0] == 202
    wait_for(lambda: len(_containers(fn)) == 2 and json.loads(
        call(f"{stack.url}/system/function/{fn}", headers=auth(stack))[1])["availableReplicas"] == 2,
        timeout=90, what=f"{fn} to run 2 replicas")
    victim, survivor = _containers(fn)
    hosts = {_hostname(container) for container in (victim, survivor)}
    # nginx takes a new task into its pool at its next fetch of the routing table.
    wait_for(lambda: {invoke(stack, f"/function/{fn}")[2].strip() for _ in range(6)} == hosts,
             timeout=30, what=f"calls of {fn} to reach both tasks")

    results = []

    def slow_call():
        # POST: nginx moves an idempotent call (GET) that fails early to another task instead.
        results.append(invoke(stack, f"/function/{fn}", "POST", b"", {"X-Slow": "1"}))

    callers = [threading.Thread(target=slow_call) for _ in range(8)]
    for caller in callers:
        caller.start()
    # Killed once a call is running on it (the handler sleeps 3 s: time enough to see it).
    wait_for(lambda: "sleep 3" in _processes(victim), timeout=20, interval=0.1, what=f"a slow call on {victim}")
    subprocess.run(["docker", "kill", victim], check=True, capture_output=True)
    for caller in callers:
        caller.join(30)

    statuses = sorted(status for status, _, _ in results)
    assert len(statuses) == 8 and set(statuses) <= {200, 502}, statuses
    failed = [(headers, body) for status, headers, body in results if status == 502]
    assert failed, "no call was in flight on the killed task"
    for headers, body in failed:
        assert headers["X-OpenFaaS-Internal"] == "proxy" and body.startswith(f"Function {fn} failed".encode()), body

    # Every later call is answered, by the survivor or by the task Swarm starts in its place.
    survivor_host = _hostname(survivor)
    answers = [invoke(stack, f"/function/{fn}") for _ in range(20)]
    assert [status for status, _, _ in answers] == [200] * 20, answers
    assert survivor_host in {body.strip() for _, _, body in answers}


def _processes(container: str) -> str:
    """The command lines of the processes of a running container, as the host's ps sees them."""
    return subprocess.run(["docker", "top", container], capture_output=True, text=True, check=True).stdout


def _hostname(container: str) -> bytes:
    return subprocess.run(["docker", "inspect", "-f", "{{.Config.Hostname}}", container],
                          capture_output=True, check=True).stdout.strip()


def _stack_logs(stack) -> str:
    project = stack.env["COMPOSE_PROJECT_NAME"]
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True, check=True).stdout.split()
    # Both streams of every container of the stack (gateway and nginx), in one text.
    return "".join(
        subprocess.run(["docker", "logs", container], stderr=subprocess.STDOUT, stdout=subprocess.PIPE, text=True,
                       check=True).stdout
        for container in ids
    )


def test_no_credential_or_secret_value_reaches_a_log_line_or_an_error_body(stack, watchdog_image):
    secret_value, registry_password = "s3cret-VALUE-4242", "reg-PASS-7373"
    callback_password, wrong_password = "cb-PASS-9191", "wrong-PASS-5151"
    registry_auth = base64.b64encode(f"robot:{registry_password}".encode()).decode()
    secret, fn = shared_name("leak-secret"), shared_name("leak")
    credentials = auth(stack)
    bodies = []

    def sent(url, method="GET", body=None, headers=credentials):
        status, text, _ = call(url, method, body, headers)
        bodies.append(text)
        return status

    assert sent(f"{stack.url}/system/secrets", "POST", {"name": secret, "value": secret_value}) == 201
    assert sent(f"{stack.url}/system/secrets", "PUT", {"name": secret, "value": secret_value + "-v2"}) == 200
    assert sent(f"{stack.url}/system/secrets", "POST", {"name": secret, "value": secret_value}) == 409
    assert sent(f"{stack.url}/system/secrets", "POST", {"name": "bad name", "value": secret_value}) == 400
    assert sent(f"{stack.url}/system/secrets", "POST", {"name": secret, "rawValue": secret_value}) == 400
    deployment = {"service": fn, "image": watchdog_image, "envProcess": "cat", "secrets": [secret],
                  "registryAuth": registry_auth}
    assert sent(f"{stack.url}/system/functions", "POST", deployment) == 202
    assert sent(f"{stack.url}/system/functions", "POST", deployment) == 409
    assert sent(f"{stack.url}/system/functions", "PUT", {**deployment, "image": "Not An Image"}) == 400
    assert sent(f"{stack.url}/system/functions", "PUT", {**deployment, "registryAuth": registry_password}) == 400
    assert sent(f"{stack.url}/system/functions", "GET") == 200
    assert sent(f"{stack.url}/system/functions", "GET", headers=basic_auth(stack.user, wrong_password)) == 401
    status, headers, body = invoke(stack, f"/async-function/{fn}", "POST", b"x",
                                   {"X-Callback-Url": f"http://hook:{callback_password}@127.0.0.1:1/down"})
    bodies.append(body)
    assert status == 202
    status, headers, body = invoke(stack, f"/async-function/{fn}", "POST", b"x",
                                   {"X-Callback-Url": f"ftp://hook:{callback_password}@host/"})
    bodies.append(body)
    assert status == 400
    # The failed callback is logged only after its retries.
    wait_for(lambda: "callback for async call" in _stack_logs(stack), timeout=60, what="the failed callback's log line")
    assert sent(f"{stack.url}/system/functions", "DELETE", {"functionName": fn}) == 200
    assert sent(f"{stack.url}/system/secrets", "DELETE", {"name": secret}) == 200

    logs = _stack_logs(stack)
    assert "POST /system/secrets" in logs  # the access log is there to search
    everything = logs + "".join(b.decode("utf-8", "replace") for b in bodies)
    for leak in (secret_value, registry_password, registry_auth, callback_password, wrong_password, stack.password):
        assert leak not in everything, f"{leak!r} appears in a log line or an error body"
