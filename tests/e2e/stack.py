"""The stack under test and what the end-to-end tests do with it: invoke through nginx (or at the
gateway's gunicorn, with no nginx in front), deploy a test function and wait until nginx routes
it, switch the stack to a Redis queue of the test's own, and collect async callbacks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harness import ROOT, basic_auth, bridge_ip
from tests.gateway import call
from tests.queueing import RedisServer
from tests.swarm import CLASSIC_IMAGE
from tests.waiting import wait_for


@dataclass(frozen=True)
class Stack:
    url: str
    user: str
    password: str
    env: dict[str, str]
    credentials: Path
    # What the first `make up` printed: its stdout, then its stderr.
    started: str = ""

    def make(self, target: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", target], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=1800
        )


@contextlib.contextmanager
def stack_on_redis(stack: Stack, folder: Path):
    """The stack switched to a Redis queue of the test's own (on the host, reachable from the
    gateway container over docker_gwbridge); yields the stack and the server, and switches the
    stack back to its own queue afterwards."""
    bridge = subprocess.run(
        ["docker", "network", "inspect", "docker_gwbridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    server = RedisServer(folder, also_on=bridge).start()
    with_redis = dataclasses.replace(stack, env={**stack.env, "ASYNC_QUEUE": server.url})
    try:
        started = with_redis.make("up")
        assert started.returncode == 0, started.stderr[-3000:]
        yield with_redis, server
    finally:
        restored = stack.make("up")
        server.stop()
        assert restored.returncode == 0, restored.stderr[-3000:]


def auth(stack) -> dict[str, str]:
    return basic_auth(stack.user, stack.password)


def deploy(stack, fn: str, handler: str, image: str = CLASSIC_IMAGE, **fields) -> None:
    """Deploy the shell snippet ``handler`` on a test image (the classic watchdog unless told),
    with any other deployment ``fields`` (``labels``, ``annotations`` ...), and wait until it is
    available; images/watchdog/run-handler.sh runs it per call."""
    body = {"service": fn, "image": image, "envVars": {"handler": handler}, **fields}
    status, text, _ = call(f"{stack.url}/system/functions", "POST", body, auth(stack))
    assert status == 202, text

    def ready():
        return json.loads(call(f"{stack.url}/system/function/{fn}", headers=auth(stack))[1])["availableReplicas"] >= 1

    wait_for(ready, timeout=90, what=f"{fn} to be available")
    wait_for(lambda: routed_by_nginx(stack, fn), timeout=30, what=f"nginx to route {fn} itself")


def routed_by_nginx(stack, fn: str) -> bool:
    """Whether a call of ``fn`` went from nginx straight to the function: the gateway's access
    log, which names every request it served by its X-Request-Id, does not have it. A function
    just deployed goes through the gateway until nginx's next fetch of the routing table."""
    request_id = uuid.uuid4().hex
    # Both watchdogs answer /_/health themselves, without running the function.
    assert invoke(stack, f"/function/{fn}/_/health", headers={"X-Request-Id": request_id})[0] == 200
    return request_id not in gateway_log(stack)


def gateway_log(stack) -> str:
    """What the gateway container has written so far, gunicorn's access log among it: one line
    per request served, with the request's X-Request-Id (`` rid=... ``)."""
    logs = subprocess.run(["docker", "logs", container(stack, "gateway")], capture_output=True, text=True, check=True)
    return logs.stdout + logs.stderr


def at_gunicorn(stack: Stack) -> Stack:
    """The stack with its URL at the gateway container's gunicorn itself: the container's
    docker_gwbridge address, which the host reaches with neither nginx nor docker-proxy in between
    (bench/experiments.py's "gunicorn, no nginx"). A /function/ call made there goes through the
    gateway's own proxy (app/dataplane/forwarder.py), whatever nginx's routing table holds."""
    return dataclasses.replace(stack, url=f"http://{bridge_ip(container(stack, 'gateway'))}:8080")


def invoke(stack, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    parts = urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def container(stack, service: str) -> str:
    return subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={stack.env['COMPOSE_PROJECT_NAME']}",
         "--filter", f"label=com.docker.compose.service={service}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[0]


def function_containers(fn: str) -> list[str]:
    """The IDs of the running containers of function ``fn``'s service (on this node)."""
    return subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={fn}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()


def deploy_receiver(stack, receiver: str) -> None:
    """A callback receiver that is itself a function: it logs each callback it gets (the
    watchdog keeps a function's own output, so the line goes to the container's output)."""
    deploy(stack, receiver, 'echo "CALLBACK $Http_X_Call_Id $Http_X_Function_Status $Http_X_Function_Name" > /proc/1/fd/1')


def delivered(stack, receiver: str, function: str) -> set[str]:
    """The call IDs of the successful calls of ``function`` whose callback reached ``receiver``."""
    status, body, _ = call(f"{stack.url}/system/logs?name={receiver}", headers=auth(stack))
    assert status == 200
    seen = set()
    for line in body.splitlines():
        words = json.loads(line)["text"].split()
        if words[:1] == ["CALLBACK"] and words[2:] == ["200", function]:
            seen.add(words[1])
    return seen
