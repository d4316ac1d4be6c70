"""Namespaces on every node: a namespace's functions are reachable through nginx and through each
gateway wherever their tasks run, other namespaces' functions are not reachable from them, and a
deleted namespace is gone for the very next read."""

from __future__ import annotations

import json
import uuid

import requests

from harness.cluster import Cluster, on
from tests.waiting import wait_for


def _running(cluster: Cluster, service: str, count: int) -> list[dict]:
    return wait_for(
        lambda: (tasks := cluster.tasks(service)) and len({t["node"] for t in tasks}) == count and tasks,
        timeout=120, what=f"{service} on {count} nodes",
    )


def _address(task: dict) -> str:
    inspected = json.loads(on("node-1", "docker", "inspect", task["id"]))[0]
    return inspected["NetworksAttachments"][0]["Addresses"][0].split("/")[0]


def _reaches(task: dict, address: str) -> bool:
    """Whether a replica's container gets an answer from ``address``:8080 within 3 s (busybox
    wget's own -T crashes in this image, so timeout bounds it)."""
    out = on(task["node"], "docker", "exec", task["container"], "timeout", "3", "wget", "-q", "-O-",
             "--post-data=ping", f"http://{address}:8080/", check=False)
    return out == "ping"


def _gateways(cluster: Cluster) -> list[dict] | None:
    """The two gateway tasks once Swarm's updates of their service are over (each namespace
    created adds its network to the gateways' spec, and Swarm replaces them one by one); None
    while a task is still being replaced."""
    state = on("node-1", "docker", "service", "inspect", "faas_gateway", "-f",
               "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}")
    tasks = cluster.tasks("faas_gateway")
    return tasks if state in ("", "completed") and len(tasks) == 2 else None


def _gateway_answers(gateway: dict, reference: str) -> bool:
    """Whether a gateway's own proxy, called from its container, gets ``reference``'s answer."""
    answer = on(gateway["node"], "docker", "exec", gateway["container"], "python3", "-c",
                "import urllib.request; print(urllib.request.urlopen("
                f"'http://127.0.0.1:8080/function/{reference}', data=b'y', timeout=10).read().decode())",
                check=False)
    return answer == "y"


def _answers(cluster: Cluster, reference: str) -> bool:
    try:
        return cluster.call(reference, b"x").text == "x"
    except requests.RequestException:
        return False


def _delete(cluster: Cluster, namespace: str) -> requests.Response:
    """DELETE a namespace, again while a removed function's tasks still hold its network (409)."""
    def deleted():
        answer = cluster.api("DELETE", f"/system/namespace/{namespace}")
        return answer if answer.status_code != 409 else None

    return wait_for(deleted, timeout=60, what=f"namespace {namespace} deleted")


def test_namespaces_work_and_stay_apart_on_every_node(cluster: Cluster):
    ours, theirs = f"a{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
    made = []
    try:
        for namespace in (ours, theirs):
            assert cluster.api("POST", "/system/namespace/", {"name": namespace}).status_code == 201
            made.append(namespace)
            cluster.deploy("fn", replicas=3, namespace=namespace)
        # A function of another namespace is the Swarm service <name>_<namespace>.
        tasks = {ns: _running(cluster, f"fn_{ns}", 3) for ns in (ours, theirs)}

        # Through each gateway's own proxy, from the gateway's container, once Swarm replaced
        # the gateways with tasks on the new networks: until then a call may reach a gateway
        # not yet on them (docs/cluster.md).
        gateways = wait_for(lambda: _gateways(cluster), timeout=120, what="the gateways on the new networks")
        for gateway in gateways:
            wait_for(lambda gateway=gateway: _gateway_answers(gateway, f"fn.{ours}"), timeout=60,
                     what=f"{gateway} to call fn.{ours}")
        # Through nginx (which hands other namespaces to the gateways): every call answered.
        wait_for(lambda: _answers(cluster, f"fn.{ours}"), timeout=30, what=f"fn.{ours} answering")
        for _ in range(12):
            assert cluster.call(f"fn.{ours}", b"x").text == "x"

        # Apart: a replica reaches its own namespace's replicas on other nodes, never another's.
        probe = next(t for t in tasks[ours] if t["node"] == "node-2")
        own = [t for t in tasks[ours] if t["node"] != "node-2"]
        other = [t for t in tasks[theirs] if t["node"] != "node-2"]
        assert all(_reaches(probe, _address(t)) for t in own)
        assert not any(_reaches(probe, _address(t)) for t in other)
    finally:
        for namespace in made:
            cluster.remove("fn", namespace)
        deleted = {namespace: _delete(cluster, namespace).status_code for namespace in made}

    assert deleted == {ours: 200, theirs: 200}
    for namespace in made:
        assert cluster.api("GET", f"/system/namespace/{namespace}").status_code == 404
