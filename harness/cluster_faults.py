"""A node lost and a gateway lost under load, on the local cluster: what the cluster tests assert
and what bench/cluster_faults.py prints (docs/benchmarks.md).

Each scenario deploys its functions, starts a steady call load (c16) and a batch of async calls
whose callbacks a small server on the cluster's bridge counts, kills one thing with `docker kill`,
watches for a fixed window, and brings the node back. Windows and waits are bounded; the killed
node is started again whatever happens.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import requests

from harness import docker, free_port
from harness.cluster import CLUSTER, NODES, Cluster, Events, Load, node_container, on

# Calls that fail later than this after the kill count as failures the cluster did not absorb.
GRACE = 15.0
# How long the load goes on after the kill.
WINDOW = 25.0
ASYNC_CALLS = 30


@dataclass
class Report:
    """What one scenario saw; times are seconds after the kill."""

    scenario: str
    calls: int = 0
    # Calls sent again because nginx had closed their idle connection (as Go clients do).
    resent: int = 0
    failed: int = 0
    failed_after_grace: int = 0
    last_failure: float | None = None
    recovered: float | None = None
    async_accepted: int = 0
    async_succeeded: int = 0
    async_failed: int = 0
    async_duplicated: int = 0
    async_duplicated_ids: list[str] = field(default_factory=list)
    # Calls a gateway took over from a worker gone quiet, as the gateways logged them.
    async_taken_over: list[str] = field(default_factory=list)
    async_lost: int = 0
    async_lost_ids: list[str] = field(default_factory=list)
    # The failed calls: "<seconds after the kill the call started> <status or error>".
    failures: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    leaders: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{self.scenario}: {key} = {value}" for key, value in vars(self).items() if key != "scenario"]


class CallbackSink:
    """Receives async callbacks on the cluster's bridge (the gateways reach the host there) and
    counts them by call ID, with the function's status each carried."""

    def __init__(self):
        self.address = docker("network", "inspect", CLUSTER, "-f", "{{(index .IPAM.Config 0).Gateway}}")
        self.received: list[tuple[str, int]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = int(self.headers.get("X-Function-Status") or 0)
                sink.received.append((self.headers.get("X-Call-Id", ""), status))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((self.address, free_port(self.address)), Handler)
        self.url = f"http://{self.address}:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait(condition, timeout: float) -> float | None:
    """Poll ``condition`` every 0.2 s for at most ``timeout`` s; the seconds it took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.2)
    return None


def _spread(cluster: Cluster, name: str, nodes: int) -> bool:
    return len({task["node"] for task in cluster.tasks(name)}) == nodes


def _submit(cluster: Cluster, name: str, sink: CallbackSink) -> list[str]:
    ids = []
    for number in range(ASYNC_CALLS):
        answer = requests.post(f"{cluster.url}/async-function/{name}", data=f"call {number}",
                               headers={"X-Callback-Url": sink.url}, timeout=10)
        assert answer.status_code == 202, answer.text
        ids.append(answer.headers["X-Call-Id"])
    return ids


def _settle(report: Report, load: Load, killed_at: float, ids: list[str], sink: CallbackSink) -> None:
    """Count the load's outcomes and the callbacks (waiting, bounded, for the last ones)."""
    outcomes = load.stop()
    report.calls = len(outcomes)
    report.resent = load.resent
    failed = [outcome.started - killed_at for outcome in outcomes if not outcome.ok]
    report.failed = len(failed)
    report.failed_after_grace = sum(1 for when in failed if when > GRACE)
    report.last_failure = round(max(failed), 2) if failed else None
    report.failures += [f"{o.started - killed_at:.2f} {o.detail}" for o in outcomes if not o.ok]
    _wait(lambda: {call for call, _ in sink.received} >= set(ids), timeout=150)
    counts = Counter(call for call, _ in sink.received)
    report.async_accepted = len(ids)
    report.async_succeeded = sum(1 for call, status in sink.received if call in ids and 200 <= status < 300)
    report.async_failed = sum(1 for call, status in sink.received if call in ids and not 200 <= status < 300)
    report.async_duplicated = sum(count - 1 for call, count in counts.items() if call in ids and count > 1)
    report.async_duplicated_ids = sorted(call for call, count in counts.items() if call in ids and count > 1)
    report.async_lost_ids = [call for call in ids if call not in counts]
    report.async_lost = len(report.async_lost_ids)


# The gateways' settings the scenarios' patience is built on (the cluster tests and the benchmark
# start the cluster with them): a call held by a lost gateway is taken over after 20 s.
DEADLINES = {"ASYNC_CLAIM_TIMEOUT": "20s", "UPSTREAM_TIMEOUT": "10s", "AUTOSCALER_INTERVAL": "2s"}


def _prepare(cluster: Cluster, name: str) -> str:
    """Deploy ``name`` (echo) and ``name``-slow (a second per call), 3 replicas each over 3 nodes,
    on a cluster whose gateways run with DEADLINES."""
    env = json.loads(on("node-1", "docker", "service", "inspect", "faas_gateway", "-f",
                        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}"))
    wanted = [f"{key.lower()}={value}" for key, value in DEADLINES.items()]
    assert set(wanted) <= set(env), (
        f"the cluster's gateways need {' '.join(wanted)}: start it with "
        f"{' '.join(f'{k}={v}' for k, v in DEADLINES.items())} make cluster"
    )
    slow = f"{name}-slow"
    cluster.deploy(name, replicas=3)
    cluster.deploy(slow, replicas=3, handler="sleep 1; cat")
    for function in (name, slow):
        assert _wait(lambda: _spread(cluster, function, 3), timeout=120) is not None, f"{function} not on 3 nodes"
    return slow


def node_loss(cluster: Cluster, name: str, victim: str = "node-3") -> Report:
    """Kill ``victim``'s container under load, watch WINDOW s, start it again and wait for it to
    rejoin."""
    report = Report("node loss")
    slow = _prepare(cluster, name)
    events = Events(cluster)
    sink = CallbackSink()
    load = Load(f"{cluster.url}/function/{name}", clients=16).start()
    try:
        assert _wait(lambda: len(load.outcomes) > 100, timeout=30) is not None, "no load"
        ids = _submit(cluster, slow, sink)
        killed_at = time.monotonic()
        docker("kill", node_container(victim))
        report.recovered = _wait(
            lambda: len(cluster.tasks(name)) == 3 and len(cluster.tasks(slow)) == 3, timeout=WINDOW + 30)
        time.sleep(max(0.0, killed_at + WINDOW - time.monotonic()))  # the observed window, not a wait
        _settle(report, load, killed_at, ids, sink)
    finally:
        load.stop()
        sink.close()
        docker("start", node_container(victim))
    try:
        _wait(lambda: on("node-1", "docker", "node", "inspect", "-f", "{{.Status.State}}", victim,
                         check=False) == "ready", timeout=90)
        _wait(lambda: events.of("node.ready"), timeout=30)
        report.events = [kind for kind, _ in events.events if kind.startswith("node.")]
        # Back, and nothing runs twice: Swarm keeps the replicas it moved and stops the old ones.
        _wait(lambda: len(cluster.tasks(name)) == 3 and len(cluster.tasks(slow)) == 3, timeout=30)
    finally:
        events.close()
        cluster.remove(slow)
    return report


def leaders(since: str) -> list[str]:
    """The autoscaler's changes of leadership logged by every gateway container (killed ones too)
    since ``since`` (RFC 3339), in time order: ``"<time> <container> <pid> leads"`` or
    ``"... no longer leads"``."""
    found = []
    for container, line in _gateway_log(since):
        match = re.match(r"(\S+) .*autoscaler: process (\d+) (leads|no longer leads)", line)
        if match:
            found.append(" ".join([match[1], container, *match.groups()[1:]]))
    return sorted(found)


def taken_over(since: str) -> list[str]:
    """The IDs of the async calls a gateway took over from a worker gone quiet since ``since``:
    the calls a lost gateway held, which may have reached their callback before it died."""
    found = set()
    for _, line in _gateway_log(since):
        _, marker, ids = line.partition("async calls taken over from a worker gone quiet: ")
        if marker:
            found.update(call.strip() for call in ids.split(","))
    return sorted(found)


def _gateway_log(since: str) -> Iterator[tuple[str, str]]:
    """(container, line) of what every gateway container (killed ones too) logged since
    ``since``, with timestamps. Read container by container on each node: `docker service logs`
    can hang for good (moby/moby#38640)."""
    for node in NODES:
        containers = on(node, "docker", "ps", "-a", "-q", "--filter", "label=com.docker.swarm.service.name=faas_gateway")
        for container in containers.split():
            out = on(node, "sh", "-c", f"docker logs --timestamps --since {since} {container} 2>&1", check=False)
            for line in out.splitlines():
                yield container, line


def gateway_loss(cluster: Cluster, name: str, victim_node: str = "node-2") -> Report:
    """Kill the gateway task on ``victim_node`` under API and call load, watch WINDOW s."""
    report = Report("gateway loss")
    slow = _prepare(cluster, name)
    since = on("node-1", "date", "-u", "+%Y-%m-%dT%H:%M:%SZ")
    sink = CallbackSink()
    api = Load(f"{cluster.url}/system/functions", clients=8, method="GET", auth=cluster.auth).start()
    calls = Load(f"{cluster.url}/function/{name}", clients=8).start()
    try:
        assert _wait(lambda: len(api.outcomes) > 50 and len(calls.outcomes) > 50, timeout=30) is not None, "no load"
        ids = _submit(cluster, slow, sink)
        gateway = next(task for task in cluster.tasks("faas_gateway") if task["node"] == victim_node)
        killed_at = time.monotonic()
        on(victim_node, "docker", "kill", gateway["container"])
        report.recovered = _wait(
            lambda: len([t for t in cluster.tasks("faas_gateway") if t["id"] != gateway["id"]]) == 2,
            timeout=WINDOW + 30)
        time.sleep(max(0.0, killed_at + WINDOW - time.monotonic()))  # the observed window, not a wait
        api_report = Report("api")
        _settle(api_report, api, killed_at, [], sink)
        _settle(report, calls, killed_at, ids, sink)
        report.calls += api_report.calls
        report.resent += api_report.resent
        report.failures += api_report.failures
        report.failed += api_report.failed
        report.failed_after_grace += api_report.failed_after_grace
        report.last_failure = max(filter(None, [report.last_failure, api_report.last_failure]), default=None)
        report.leaders = leaders(since)
        report.async_taken_over = taken_over(since)
    finally:
        api.stop()
        calls.stop()
        sink.close()
        cluster.remove(slow)
    return report


def report_json(report: Report) -> str:
    return json.dumps(vars(report))
