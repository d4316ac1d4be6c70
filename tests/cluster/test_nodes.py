"""What the API and the dashboard show covers every node: instances with each replica's node and
figures, usage, logs with every instance, and container events of replicas on any node."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from harness.cluster import Cluster, Events, faas_cli, on
from tests.waiting import wait_for


def spread(cluster: Cluster, name: str, replicas: int = 3) -> list[dict]:
    """Deploy ``name`` at ``replicas`` and wait until its tasks run on that many nodes."""
    cluster.deploy(name, replicas=replicas)
    return wait_for(
        lambda: (tasks := cluster.tasks(name)) and len({task["node"] for task in tasks}) == replicas and tasks,
        timeout=120, what=f"{name}'s {replicas} replicas on {replicas} nodes",
    )


def test_instances_name_every_node_with_its_figures(cluster: Cluster, name: str):
    spread(cluster, name)

    def measured():
        instances = cluster.api("GET", f"/system/function/{name}/instances").json()
        ready = [i for i in instances if i["state"] == "running" and i["memoryBytes"] > 0 and i["cpu"] >= 0]
        return instances if len(ready) == 3 else None

    instances = wait_for(measured, timeout=60, what="3 replicas measured on their nodes")
    assert {instance["node"] for instance in instances} == {"node-1", "node-2", "node-3"}
    assert all(instance["networkRxBytes"] >= 0 for instance in instances)


def test_usage_counts_replicas_on_every_node(cluster: Cluster, name: str):
    tasks = spread(cluster, name)
    # What each node's own Docker says one replica uses, as `docker stats` prints it ("1.5MiB / 7GiB").
    alone = []
    for task in tasks:
        shown = on(task["node"], "docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", task["container"])
        amount, unit = re.fullmatch(r"([\d.]+)([KMG]i?B)", shown.split("/")[0].strip()).groups()
        alone.append(float(amount) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit])

    def usage():
        return cluster.api("GET", f"/system/function/{name}?usage=1").json().get("usage")

    # Three replicas' working sets, not the one on the gateway's node (replicas differ a little).
    # The samplers' first rounds may have met a replica still starting: wait for all three.
    def all_three():
        found = usage()
        return found if found and found["totalMemoryBytes"] >= 2.5 * min(alone) else None

    wait_for(all_three, timeout=60, what=f"usage counting three replicas of about {min(alone):.0f} bytes each")


def test_logs_show_every_instance(cluster: Cluster, name: str):
    tasks = spread(cluster, name)
    for _ in range(30):
        assert cluster.call(name).status_code == 200

    def instances_in_logs():
        out = faas_cli(cluster, "logs", name, "--tail=false", "--since=10m", "--instance")
        return all(f"({task['id']})" in out for task in tasks)

    wait_for(instances_in_logs, timeout=60, what="log lines of all three instances")


def test_a_replica_killed_on_another_node_is_reported_died(cluster: Cluster, name: str):
    tasks = spread(cluster, name)
    victim = next(task for task in tasks if task["node"] != "node-1")
    events = Events(cluster, f"?function={name}")
    try:
        on(victim["node"], "docker", "kill", victim["container"])
        died = wait_for(
            lambda: [e for e in events.of("replica.died") if e["instance"] == victim["id"]],
            timeout=30, what=f"replica.died of {victim['id']} on {victim['node']}",
        )
        assert died[0]["exitCode"] == 137
    finally:
        events.close()


def test_the_dashboard_lists_the_replicas_of_every_node(cluster: Cluster, name: str, chromium):
    spread(cluster, name)
    context = chromium.new_context(base_url=cluster.url)
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        page.goto("/ui/")
        page.get_by_label("User").fill(cluster.auth[0])
        page.get_by_label("Password").fill(cluster.auth[1])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name=name).click()
        replicas = page.locator("#instances tbody tr")
        expect(replicas).to_have_count(3)
        for node in ("node-1", "node-2", "node-3"):
            expect(replicas.filter(has_text=node)).to_have_count(1)
        # Every replica passed the probes of the gateway, whichever node it runs on.
        expect(replicas.locator("td:nth-child(4)")).to_have_text(["ready"] * 3)
        # Figures from every node: each replica's memory, and no node reported unmeasured.
        expect(replicas.filter(has=page.locator("td:nth-child(7)", has_text="–"))).to_have_count(0)
        expect(page.locator("#instances-note")).to_have_text("")
    finally:
        context.close()
