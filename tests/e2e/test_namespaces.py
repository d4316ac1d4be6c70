"""Namespaces on the running stack, through nginx: the same function name in two namespaces, each
with its own secret of the same name; isolation tried from inside a function; a non-empty
namespace refused at delete.

Each namespace is one test's own (a random suffix), and everything is removed afterwards, also
when a test fails.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import uuid

import pytest

from harness import bridge_ip
from tests.e2e.stack import auth, container, invoke, routed_by_nginx
from tests.gateway import call
from tests.swarm import CLASSIC_IMAGE
from tests.waiting import wait_for

# The prober reads a host name or address, and optionally a path, from its body and sends it a
# GET: the answer, or UNREACHABLE when the name does not resolve. The image's static busybox
# cannot use the C library's resolver (its wget crashes), so names are asked of Docker's DNS
# server with nslookup and the request is sent with nc. An address on no network of the prober's goes out by the
# default route, where the machine may answer something else: the tests look for the secret.
PROBE = """read target path
case "$target" in
  *[!0-9.]*) target=$(nslookup "$target" 127.0.0.11 2>/dev/null | awk '/^Name:/ {n=1} n && /^Address/ {print $NF; exit}') ;;
esac
[ -n "$target" ] && printf 'GET %s HTTP/1.0\\r\\n\\r\\n' "${path:-/}" | nc -w 3 "$target" 8080 || echo UNREACHABLE"""


def deploy(stack, name: str, namespace: str, handler: str, secrets: list[str] = ()) -> None:
    body = {"service": name, "namespace": namespace, "image": CLASSIC_IMAGE, "envVars": {"handler": handler},
            "secrets": list(secrets)}
    status, text, _ = call(f"{stack.url}/system/functions", "POST", body, auth(stack))
    assert status == 202, text

    def ready():
        status, text, _ = call(f"{stack.url}/system/function/{name}?namespace={namespace}", headers=auth(stack))
        return status == 200 and json.loads(text)["availableReplicas"] >= 1

    wait_for(ready, timeout=90, what=f"{name}.{namespace} to be available")
    wait_for(lambda: routed_by_nginx(stack, f"{name}.{namespace}"), timeout=30, what=f"nginx to route {name}.{namespace}")


def answer(stack, reference: str, body: bytes = b"") -> str:
    status, _, text = invoke(stack, f"/function/{reference}", "POST", body)
    assert status == 200, text
    return text.decode().strip()


def task_address(service: str, network: str) -> str:
    """The address of the running task of ``service`` on ``network``."""
    task = subprocess.run(
        ["docker", "service", "ps", service, "--filter", "desired-state=running", "-q", "--no-trunc"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[0]
    inspected = json.loads(subprocess.run(["docker", "inspect", task], capture_output=True, text=True, check=True).stdout)
    for attachment in inspected[0]["NetworksAttachments"]:
        if attachment["Network"]["Spec"]["Name"] == network:
            return attachment["Addresses"][0].split("/")[0]
    raise AssertionError(f"{service} has no address on {network}")


def gateway_address(stack, network: str) -> str:
    """The gateway container's address on ``network``."""
    networks = subprocess.run(
        ["docker", "inspect", container(stack, "gateway"), "--format", "{{json .NetworkSettings.Networks}}"],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(networks)[network]["IPAddress"]


@pytest.fixture
def two_namespaces(stack):
    suffix = uuid.uuid4().hex[:6]
    names = [f"e2e-a-{suffix}", f"e2e-b-{suffix}"]
    created: list[tuple[str, str, str]] = []  # (kind, name, namespace), to remove afterwards
    try:
        yield names, created
    finally:
        for kind, name, namespace in reversed(created):
            if kind == "function":
                call(f"{stack.url}/system/functions", "DELETE", {"functionName": name, "namespace": namespace}, auth(stack))
            elif kind == "secret":
                call(f"{stack.url}/system/secrets", "DELETE", {"name": name, "namespace": namespace}, auth(stack))
            else:
                # The removed functions' tasks hold the network until they have stopped.
                wait_for(
                    lambda: call(f"{stack.url}/system/namespace/{name}", "DELETE", headers=auth(stack))[0] in (200, 404),
                    timeout=60, what=f"namespace {name} to be removed",
                )


def test_same_name_in_two_namespaces_isolated_with_own_secrets(stack, two_namespaces):
    (a, b), created = two_namespaces
    for namespace in (a, b):
        status, text, _ = call(f"{stack.url}/system/namespace/", "POST", {"name": namespace, "labels": {"team": namespace}},
                               auth(stack))
        assert status == 201, text
        created.append(("namespace", namespace, namespace))
        status, text, _ = call(f"{stack.url}/system/secrets", "POST",
                               {"name": "token", "value": f"secret of {namespace}", "namespace": namespace}, auth(stack))
        assert status == 201, text
        created.append(("secret", "token", namespace))
        created.append(("function", "peer", namespace))
        deploy(stack, "peer", namespace, "cat /var/openfaas/secrets/token", secrets=["token"])
    created.append(("function", "prober", a))
    deploy(stack, "prober", a, PROBE)

    status, text, _ = call(f"{stack.url}/system/namespaces", headers=auth(stack))
    assert {a, b, "openfaas-fn"} <= set(json.loads(text))
    # The same name, two functions, each with its namespace's own secret.
    assert answer(stack, f"peer.{a}") == f"secret of {a}"
    assert answer(stack, f"peer.{b}") == f"secret of {b}"
    assert call(f"{stack.url}/function/peer", headers=auth(stack))[0] == 404  # none in the default namespace

    # From inside namespace a: its own peer by plain name, nothing of b's by any name or address.
    assert answer(stack, f"prober.{a}", b"peer\n").endswith(f"\nsecret of {a}")
    assert answer(stack, f"prober.{a}", f"peer_{b}\n".encode()) == "UNREACHABLE"
    assert answer(stack, f"prober.{a}", f"tasks.peer_{b}\n".encode()) == "UNREACHABLE"
    b_address = task_address(f"peer_{b}", f"func_functions-{b}")
    assert f"secret of {b}" not in answer(stack, f"prober.{a}", f"{b_address}\n".encode())
    # Nor read where b's tasks are from nginx's routing table: the gateway, which is on a's network,
    # wants its credentials for it.
    gateway = gateway_address(stack, f"func_functions-{a}")
    table = answer(stack, f"prober.{a}", f"{gateway} /_/routes/table\n".encode())
    assert table.split()[1:2] == ["401"] and b_address not in table
    # Nor any other control route.
    for path in ("/system/functions", "/system/secrets", "/system/namespaces", f"/system/namespace/{a}", "/system/info",
                 "/system/logs?name=peer", "/system/events"):
        assert answer(stack, f"prober.{a}", f"{gateway} {path}\n".encode()).split()[1:2] == ["401"], path

    # A namespace still holding functions and secrets is refused, naming what is left.
    status, text, _ = call(f"{stack.url}/system/namespace/{a}", "DELETE", headers=auth(stack))
    assert status == 409
    assert text.decode() == f"Namespace {a} still holds function peer, function prober, secret token; remove them first.\n"
    assert call(f"{stack.url}/system/namespace/{a}", headers=auth(stack))[0] == 200


def _count(stack, name: str, namespace: str) -> int:
    status, text, _ = call(f"{stack.url}/system/function/{name}?namespace={namespace}", headers=auth(stack))
    assert status == 200, text
    return json.loads(text)["invocationCount"]


# One call's sums as nginx sends them (deploy/nginx-calls.lua), less its token: without one, with
# a made-up one, and one like it.
MARKERS = 8
SUMS = b"fn_%s 200 1 0.001 1" + b" 0" * 13 + b"\n"
FORGED = [SUMS, b"forged\n" + SUMS, b"00000000000000000000000000000000\n" + SUMS]


def test_a_function_cannot_add_calls_to_the_counts_the_autoscaler_reads(stack, two_namespaces):
    """The call log's port is open on the functions' networks: forged sums sent from inside a
    function's container, in the victim's namespace and in another, count nothing."""
    (a, b), created = two_namespaces
    for namespace in (a, b):
        assert call(f"{stack.url}/system/namespace/", "POST", {"name": namespace}, auth(stack))[0] == 201
        created.append(("namespace", namespace, namespace))
        created.append(("function", "sender", namespace))
        deploy(stack, "sender", namespace, "cat")
    created.append(("function", "peer", a))
    deploy(stack, "peer", a, "cat")
    # deploy() made calls of its own: count from here on.
    counted = _count(stack, "peer", a)

    for namespace in (a, b):
        sender = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name=sender_{namespace}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()[0]
        pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", sender], capture_output=True, text=True,
                             check=True).stdout.strip()
        target = (gateway_address(stack, f"func_functions-{namespace}"), 5514)
        lines = [line % f"peer.{a}".encode() for line in FORGED] * 20
        # From the sender's network namespace: busybox nc in the watchdog image has no UDP.
        send = (f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                f"[s.sendto(line, {target!r}) for line in {lines!r}]")
        subprocess.run(["nsenter", "-t", pid, "-n", sys.executable, "-c", send], check=True, timeout=30)

    # Then the sums nginx would send, with the token, from as many ports as the forged ones came
    # from ways (each port reaches one of the gateway's workers): once these are counted, the
    # forged datagrams before them have had their turn.
    gateway = bridge_ip(container(stack, "gateway"))
    table = call(f"http://{gateway}:8080/_/routes", headers=auth(stack))[1].decode()
    [token] = re.findall(r'token = "(\w+)"', table)
    for _ in range(MARKERS):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:
            marker.sendto(token.encode() + b"\n" + SUMS % f"peer.{a}".encode(), (gateway, 5514))
    after = wait_for(lambda: (count := _count(stack, "peer", a)) >= counted + MARKERS and count, timeout=30,
                     what="the sums with nginx's token counted")
    # 120 forged datagrams, none counted (a late sum of deploy()'s own calls may still come in).
    assert after - counted - MARKERS < 5, (counted, after)
