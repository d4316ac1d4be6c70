"""A thousand functions: the API, deploys, churn under load, idle cost, cold starts and memory.

One run, on the stack `make up` started and beside faas-swarm 0.9.1 (a peer service on the same
Swarm, as in bench/invoke.py), measures with ``--functions`` functions on the Swarm:

  list     GET /system/functions, p50 and p99 over ``--requests`` sequential calls on one
           kept-alive connection, at each of ``--sizes`` (the fleet grows between them). Both
           gateways list every service labelled com.openfaas.function, so both list the same
           set: half of it deployed through each, ``--running`` of them at one replica and the
           rest at zero (deployed, then scaled to zero, as a user would).
  deploy   a new function deployed, then called until it answers: p50 and p99 over
           ``--deploys`` functions, on each gateway.
  churn    wrk at c16 on a busy function through the stack for ``--churn-seconds``, alone and
           while ``--churn`` other functions are deployed and removed over and over: rps, errors,
           the routing tables nginx loaded and its reloads, in interleaved rounds.
  idle     the CPU the gateway and nginx take over ``--idle-seconds`` with nothing called, and
           their memory.
  cold     the first call to a function at zero replicas to its answer, p50 and p99 over
           ``--cold`` functions per runtime, each split in three by its task's timestamps: until
           Swarm created the task, the task's start (created to running), from running to the
           answer. Beside it Swarm's own part: a plain service scaled from 0 to 1 until its task
           runs (the Engine API, polled every 10 ms), with when its task entered each state. Then
           ``--burst`` concurrent calls to one cold function: how many were answered, and how
           many times its service changed (one scale-up is one change). Last, ``--wake`` cold
           functions called at once, one call each, beside as many plain services scaled at once.
  memory   ``--streams`` open log streams and as many open event streams through nginx for
           ``--memory-minutes``; the gateway's total RSS (every process in its container)
           sampled every 30 s.

Everything it creates is removed at the end, also on failure and Ctrl-C. Usage (about 25
minutes with the defaults):

    .venv/bin/python -m bench.scale [--functions 1000] [--sizes 10,100,1000] [--running 50]
        [--parts list,deploy,churn,idle,cold,memory] [--memory-minutes 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import docker

from bench.common import call, cleanly, stack_auth, wait_until
from app.domain.timestamps import parse_rfc3339
from bench.invoke import FUNCTIONS_NETWORK, RUNTIMES, Setup, latencies, load, wrk
from harness import ROOT

PARTS = ("list", "deploy", "churn", "idle", "cold", "memory")
ONE_REPLICA = {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "1"}
GATEWAY, NGINX = "openfaas_gateway_1", "openfaas_nginx_1"
# Deploys in flight at once while the fleet grows: the Swarm manager's pace, not ours.
DEPLOYERS = 4


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary_ms(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 50) * 1000:8.1f} ms  p99 {percentile(samples, 99) * 1000:8.1f} ms  (n={len(samples)})"


def container_cpu_seconds(api: docker.APIClient, container: str) -> float:
    return api.stats(container, stream=False)["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def container_rss_mib(api: docker.APIClient, container: str) -> float:
    """The resident memory of every process in ``container``, from /proc on this host."""
    total = 0
    for row in api.top(container, ps_args="-o pid")["Processes"]:
        try:
            status = Path(f"/proc/{row[0]}/status").read_text()
        except OSError:
            continue  # a process that just ended
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total / 1024


@dataclass
class Fleet:
    """The functions of one run: half deployed through this stack, half through faas-swarm."""

    stack: str
    auth: dict[str, str]
    peer: str
    run_id: str
    stack_names: list[str] = field(default_factory=list)
    peer_names: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # plain services and one-off functions
    images: dict[str, str] = field(default_factory=dict)

    def name(self, index: int) -> str:
        return f"sc-{self.run_id}-{index:04d}"

    def deploy_stack(self, name: str, image: str, running: bool) -> None:
        self.images[name] = image
        labels = ONE_REPLICA if running else {}
        status, body, _ = call(f"{self.stack}/system/functions", "POST",
                               {"service": name, "image": image, "labels": labels}, self.auth)
        if status != 202:
            raise SystemExit(f"the stack refused to deploy {name}: {status} {body!r}")
        if not running:
            status, body, _ = call(f"{self.stack}/system/scale-function/{name}", "POST",
                                   {"serviceName": name, "replicas": 0}, self.auth)
            if status not in (200, 202):
                raise SystemExit(f"the stack refused to scale {name} to zero: {status} {body!r}")

    @property
    def network(self) -> str:
        """The network of faas-swarm's part of the fleet. faas-swarm gives every service a
        virtual IP, and 500 of them would fill the functions network's /24 (Swarm then leaves
        new tasks in state "new"); the peer never calls these, it only lists them."""
        return f"sc-{self.run_id}"

    def deploy_peer(self, name: str, image: str, running: bool, network: str = "") -> None:
        self.images[name] = image
        body = {"service": name, "image": image, "network": network or FUNCTIONS_NETWORK, "labels": ONE_REPLICA}
        status, text, _ = call(f"{self.peer}/system/functions", "POST", body)
        if status not in (200, 202):
            raise SystemExit(f"faas-swarm refused to deploy {name}: {status} {text!r}")
        for _ in range(10 if not running else 0):
            # faas-swarm answers 500 "update out of sequence" while Swarm still writes the new
            # service: it does not retry itself.
            status, text, _ = call(f"{self.peer}/system/scale-function/{name}", "POST",
                                   {"serviceName": name, "replicas": 0})
            if status in (200, 202):
                break
            if b"out of sequence" not in text:
                raise SystemExit(f"faas-swarm refused to scale {name} to zero: {status} {text!r}")
            time.sleep(0.2)

    def grow(self, size: int, running: int) -> None:
        """Deploy functions until ``size`` are on the Swarm; the first ``running`` run, the rest
        alternate between the two runtimes at zero replicas."""
        start = len(self.stack_names) + len(self.peer_names)
        jobs = []
        for index in range(start, size):
            name, on_stack = self.name(index), index % 2 == 0
            image = RUNTIMES["of-watchdog"] if index < running else list(RUNTIMES.values())[(index // 2) % 2]
            (self.stack_names if on_stack else self.peer_names).append(name)
            jobs.append((self.deploy_stack, name, image, index < running) if on_stack
                        else (self.deploy_peer, name, image, index < running, self.network))
        with ThreadPoolExecutor(DEPLOYERS) as pool:
            list(pool.map(lambda job: job[0](*job[1:]), jobs))  # re-raises the first failure
        self.settle(min(size, running))
        print(f"# {size} functions deployed ({load()})", flush=True)

    def settle(self, running: int) -> None:
        """Wait until ``running`` of the fleet's replicas run and the others stopped (no replica
        started or stopped for 10 s: Swarm starts a new one late while it stops hundreds, and now
        and then leaves one running that faas-swarm scaled to zero), and nginx has not changed
        its routing table for 3 s: what is measured next is the fleet, not its start."""
        api = docker.from_env().api
        prefix = f"/sc-{self.run_id}-"
        seen: list = [None, time.monotonic()]  # the replicas running, since when

        def still() -> bool:
            now = {c["Id"] for c in api.containers() if c["Names"][0].startswith(prefix)}
            if now != seen[0]:
                seen[:] = [now, time.monotonic()]
            return len(now) >= running and time.monotonic() - seen[1] >= 10

        wait_until(still, f"{running} replicas to run and the others to stop", timeout=900, interval=1)
        wait_until(lambda: _table_changes(time.time() - 3) == (0, 0), "nginx's routing table to settle", timeout=120, interval=1)

    def plain_service(self, name: str, image: str) -> str:
        """A Swarm service of ``image`` at zero replicas, made with Docker alone (no gateway), on
        the functions network; removed with the fleet. Returns ``name``."""
        self.extra.append(name)
        docker.from_env().api.create_service(
            docker.types.TaskTemplate(docker.types.ContainerSpec(image)), name=name,
            mode=docker.types.ServiceMode("replicated", 0), networks=[FUNCTIONS_NETWORK],
            endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
        )
        return name

    def cold(self, image: str, count: int, skip: int) -> list[str]:
        """``count`` of this stack's functions at zero replicas on ``image``."""
        asleep = [n for i, n in enumerate(self.stack_names) if i * 2 >= skip and self.images[n] == image]
        if len(asleep) < count:
            raise SystemExit(f"only {len(asleep)} functions at zero on {image}: raise --functions")
        return asleep[:count]

    def remove(self) -> None:
        prefix = f"sc-{self.run_id}-"
        names = docker.from_env().api.services(filters={"name": prefix})
        names = [s["Spec"]["Name"] for s in names if s["Spec"]["Name"].startswith(prefix)]
        api = docker.from_env().api
        for name in names:
            try:
                api.remove_service(name)
            except docker.errors.APIError as exc:
                print(f"clean-up: {name}: {exc}", file=sys.stderr)
        print(f"removed {len(names)} services", flush=True)

        def network_removed() -> bool:
            # Refused (409) until the removed services' tasks have left it.
            if not api.networks(names=[self.network]):
                return True
            try:
                api.remove_network(self.network)
            except docker.errors.APIError:
                return False
            return True

        wait_until(network_removed, f"network {self.network} removed", timeout=120, interval=2)


# ----------------------------------------------------------------------------- parts


def measure_list(fleet: Fleet, args) -> list[str]:
    rows = ["| functions | this stack p50 ms | p99 ms | faas-swarm p50 ms | p99 ms | p50 ratio |", "|---|---|---|---|---|---|"]
    for size in args.sizes:
        fleet.grow(size, args.running)
        listed = len(json.loads(call(f"{fleet.stack}/system/functions", headers=fleet.auth)[1]))
        ours = latencies(f"{fleet.stack}/system/functions", args.requests, "GET", fleet.auth, warmup=5)
        theirs = latencies(f"{fleet.peer}/system/functions", args.requests, "GET", warmup=5)
        print(f"list {size:5} (stack lists {listed})  stack {summary_ms(ours)}  faas-swarm {summary_ms(theirs)}", flush=True)
        p50, peer_p50 = percentile(ours, 50), percentile(theirs, 50)
        rows.append(f"| {size} | {p50 * 1000:.1f} | {percentile(ours, 99) * 1000:.1f} | {peer_p50 * 1000:.1f} | "
                    f"{percentile(theirs, 99) * 1000:.1f} | {p50 / peer_p50:.2f} |")
    return rows


def _first_answer(url: str, deadline: float) -> None:
    last = "nothing"
    while time.monotonic() < deadline:
        try:
            status, body, _ = call(url, "POST", b"ping", {"Content-Type": "text/plain"}, timeout=30)
            if status == 200:
                return
            last = f"{status} {body[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.01)
    name = url.rsplit("/", 1)[-1]
    tasks = docker.from_env().api.tasks(filters={"service": name})
    states = [(t["DesiredState"], t["Status"]["State"], t["Status"].get("Err", "")) for t in tasks]
    raise SystemExit(f"{url} never answered; last: {last}; its tasks: {states}")


def measure_deploy(fleet: Fleet, args) -> list[str]:
    image = RUNTIMES["of-watchdog"]
    samples: dict[str, list[float]] = {"stack": [], "faas-swarm": []}
    for i in range(args.deploys):
        for path in ("stack", "faas-swarm"):
            name = f"sc-{fleet.run_id}-new-{path[0]}{i}"
            fleet.extra.append(name)
            started = time.monotonic()
            if path == "stack":
                fleet.deploy_stack(name, image, running=True)
                _first_answer(f"{fleet.stack}/function/{name}", started + 60)
            else:
                fleet.deploy_peer(name, image, running=True)
                _first_answer(f"{fleet.peer}/function/{name}", started + 60)
            samples[path].append(time.monotonic() - started)
    for path, values in samples.items():
        print(f"deploy to first answer  {path:10} {summary_ms(values)}", flush=True)
    return [f"| {path} | {percentile(v, 50) * 1000:.0f} | {percentile(v, 99) * 1000:.0f} |" for path, v in samples.items()]


def _table_changes(since: float) -> tuple[int, int]:
    """(tables nginx loaded, nginx reloads) since ``since``, from its side's log lines."""
    logs = docker.from_env().api.logs(NGINX, stdout=False, stderr=True, since=int(since)).decode(errors="replace")
    return logs.count("routes: loaded the table"), logs.count("routes: reloading nginx")


def measure_churn(fleet: Fleet, busy_url: str, args) -> list[str]:
    rows = ["| round | load | rps | requests | non-2xx | socket errors | p99 ms | deploys + removals | tables loaded | "
            "nginx reloads |", "|---|---|---|---|---|---|---|---|---|---|"]
    for round_ in range(args.churn_rounds):
        for churn in (False, True):
            stop, changes = threading.Event(), [0]

            def churner() -> None:
                # Each function deployed, answering (so nginx routes it: a new table), then removed
                # (another), over and over until the load ends.
                names = [f"sc-{fleet.run_id}-churn-{i}" for i in range(args.churn)]
                while not stop.is_set():
                    for name in names:
                        fleet.deploy_stack(name, RUNTIMES["of-watchdog"], running=True)
                        changes[0] += 1
                    for name in names:
                        _first_answer(f"{fleet.stack}/function/{name}", time.monotonic() + 60)
                    for name in names:
                        call(f"{fleet.stack}/system/functions", "DELETE", {"functionName": name}, fleet.auth)
                        changes[0] += 1

            started = time.time()
            thread = threading.Thread(target=churner, daemon=True)
            if churn:
                thread.start()
            result = wrk(busy_url, 16, args.churn_seconds, timeout="10s")
            stop.set()
            if churn:
                thread.join(120)
            tables, reloads = _table_changes(started)
            sockets = ", ".join(f"{k} {v}" for k, v in result.socket_errors.items()) or "0"
            label = "churn" if churn else "alone"
            print(f"churn round {round_ + 1} {label:5} {result.describe()}  changes {changes[0]}  tables {tables}  "
                  f"reloads {reloads}", flush=True)
            rows.append(f"| {round_ + 1} | {label} | {result.rps:.0f} | {result.requests} | {result.non_2xx} | {sockets} | "
                        f"{result.latency_ms.get('99', float('nan')):.1f} | {changes[0]} | {tables} | {reloads} |")
    return rows


def measure_idle(fleet: Fleet, args) -> list[str]:
    api = docker.from_env().api
    before = {c: container_cpu_seconds(api, c) for c in (GATEWAY, NGINX)}
    time.sleep(args.idle_seconds)  # the measurement itself: CPU used over this interval
    rows = []
    for container in (GATEWAY, NGINX):
        used = container_cpu_seconds(api, container) - before[container]
        share = used / args.idle_seconds * 100
        rss = container_rss_mib(api, container)
        print(f"idle {container:20} cpu {share:5.2f}% of a core over {args.idle_seconds}s  rss {rss:7.1f} MiB", flush=True)
        rows.append(f"| {container} | {share:.2f} | {rss:.0f} |")
    return rows


def _swarm_alone(name: str) -> tuple[float, dict[str, float]]:
    """Seconds from a plain service's scale 0 -> 1 to its task running, and when its task entered
    each state seen on the way, in seconds after Swarm created it (as the task's status records
    it; a state that lasted less than a look, 10 ms, may be missed)."""
    api = docker.from_env().api
    service = docker.from_env().services.get(name)
    started, states = time.monotonic(), {}
    service.scale(1)
    while time.monotonic() - started < 60:
        for task in api.tasks(filters={"service": name, "desired-state": "running"}):
            state = task["Status"]["State"]
            states.setdefault(state, _docker_time(task["Status"]["Timestamp"]) - _docker_time(task["CreatedAt"]))
            if state == "running":
                return time.monotonic() - started, states
        time.sleep(0.01)
    raise SystemExit(f"{name} never ran")


def _states_summary(runs: list[dict[str, float]]) -> str:
    """The p50 of when each state began, in Swarm's order, for the states every run saw."""
    order = ("pending", "assigned", "accepted", "preparing", "ready", "starting", "running")
    return ", ".join(f"{state} {percentile([run[state] for run in runs], 50) * 1000:.0f}"
                     for state in order if all(state in run for run in runs))


COLD_PARTS = ("to the task", "task start", "to the answer")


def _docker_time(text: str) -> float:
    """Seconds since the epoch of a Docker timestamp (RFC 3339 with nanoseconds, in UTC)."""
    seconds, nanos = parse_rfc3339(text)
    return seconds + nanos / 1e9


def _cold_parts(api: docker.APIClient, name: str, wall: float, took: float) -> tuple[float, float, float]:
    """Where a cold call's ``took`` seconds, begun at ``wall``, went: until Swarm created the
    function's task (the gateway scaling the service, Swarm's orchestrator), the task's own start
    (created to running, as Swarm records it), and from running to the answer (the watchdog
    listening, the readiness probe, the call itself)."""
    def running() -> list[dict]:
        return [t for t in api.tasks(filters={"service": name}) if t["Status"]["State"] == "running"]

    # The worker tells the manager a task runs in a batch a little later: the call can be answered first.
    wait_until(running, f"{name}'s task to be recorded running", timeout=10, interval=0.05)
    task = running()[0]
    created, running = _docker_time(task["CreatedAt"]), _docker_time(task["Status"]["Timestamp"])
    return created - wall, running - created, wall + took - running


def _parts_ms(parts: tuple[float, ...]) -> str:
    return " + ".join(f"{seconds * 1000:.0f} {what}" for what, seconds in zip(COLD_PARTS, parts))


def _parts_summary(parts: list[tuple[float, ...]]) -> str:
    columns = list(zip(*parts))
    return ", ".join(f"{what} {percentile(list(column), 50) * 1000:.0f} ({percentile(list(column), 99) * 1000:.0f}) ms"
                     for what, column in zip(COLD_PARTS, columns))


def measure_cold(fleet: Fleet, args) -> list[str]:
    rows = ["| runtime | what | p50 ms | p99 ms | n |", "|---|---|---|---|---|"]
    api = docker.from_env().api
    for runtime, image in RUNTIMES.items():
        names = fleet.cold(image, args.cold, args.running)
        samples, parts = [], []
        for name in names:
            started, wall = time.monotonic(), time.time()
            status, body, _ = call(f"{fleet.stack}/function/{name}", "POST", b"ping", {"Content-Type": "text/plain"})
            if status != 200:
                raise SystemExit(f"cold call to {name} answered {status}: {body!r}")
            samples.append(time.monotonic() - started)
            parts.append(_cold_parts(api, name, wall, samples[-1]))
            print(f"cold start  {runtime:12} {name}  {samples[-1] * 1000:.0f} ms = {_parts_ms(parts[-1])}", flush=True)
        print(f"cold start  {runtime:12} through the stack  {summary_ms(samples)}", flush=True)
        alone, states = [], []
        for i in range(args.cold):
            took, seen = _swarm_alone(fleet.plain_service(f"sc-{fleet.run_id}-swarm-{runtime[:2]}{i}", image))
            alone.append(took)
            states.append(seen)
        print(f"cold start  {runtime:12} Swarm alone (scale 0 -> 1 to task running)  {summary_ms(alone)}; "
              f"its task's states began, p50 ms after it was created: {_states_summary(states)}", flush=True)
        rows.append(f"| {runtime} | first call through the stack | {percentile(samples, 50) * 1000:.0f} | "
                    f"{percentile(samples, 99) * 1000:.0f} | {len(samples)} |")
        rows.append(f"| {runtime} | its parts, p50 (p99): {_parts_summary(parts)} | | | |")
        rows.append(f"| {runtime} | `docker service scale` alone | {percentile(alone, 50) * 1000:.0f} | "
                    f"{percentile(alone, 99) * 1000:.0f} | {len(alone)} |")
        rows.append(f"| {runtime} | its task's states, p50 ms after created: {_states_summary(states)} | | | |")
    rows.append("")
    rows.append(burst(fleet, args))
    rows.append(wake_many(fleet, args))
    return rows


def _at_once(jobs: list[Callable[[], object]]) -> list[object]:
    """Run every job in a thread of its own, started together; their results, in order."""
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[], object]) -> object:
        barrier.wait(30)
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def wake_many(fleet: Fleet, args) -> str:
    """``--wake`` functions at zero called at once (one call each), beside as many plain services
    scaled 0 -> 1 at once until every task runs: how Swarm's pace and the stack's looks add up."""
    first = args.cold + 1  # the functions the cold starts and the burst woke come first
    names = fleet.cold(RUNTIMES["of-watchdog"], first + args.wake, args.running)[first:]

    def one(name: str) -> tuple[int, float]:
        started = time.monotonic()
        try:
            status = call(f"{fleet.stack}/function/{name}", "POST", b"ping", {"Content-Type": "text/plain"})[0]
        except OSError:
            status = 0
        return status, time.monotonic() - started

    answers = _at_once([lambda name=name: one(name) for name in names])
    took = [seconds for _, seconds in answers]
    statuses = [status for status, _ in answers]
    plain = [fleet.plain_service(f"sc-{fleet.run_id}-wake-{i}", RUNTIMES["of-watchdog"]) for i in range(args.wake)]
    alone = [seconds for seconds, _ in _at_once([lambda name=name: _swarm_alone(name) for name in plain])]
    line = (f"{args.wake} cold functions called at once: {statuses.count(200)} answered 200 (others: "
            f"{sorted(s for s in statuses if s != 200)}), p50 {percentile(took, 50):.1f} s, the last {max(took):.1f} s; "
            f"Swarm alone, {args.wake} services scaled 0 -> 1 at once: p50 {percentile(alone, 50):.1f} s, "
            f"the last {max(alone):.1f} s")
    print(line, flush=True)
    return line


def burst(fleet: Fleet, args) -> str:
    name = fleet.cold(RUNTIMES["of-watchdog"], args.cold + 1, args.running)[-1]
    api = docker.from_env().api
    since = time.time()

    def one() -> int:
        try:
            return call(f"{fleet.stack}/function/{name}", "POST", b"ping", {"Content-Type": "text/plain"})[0]
        except OSError:
            return 0

    started = time.monotonic()
    statuses = _at_once([one] * args.burst)
    elapsed = time.monotonic() - started
    # Each change of a service's replicas is a service event naming the old and new count.
    scaled = [event for event in api.events(since=since, until=time.time(), decode=True,
                                            filters={"type": "service", "service": name})
              if "replicas.new" in event["Actor"]["Attributes"]]
    changes = len(scaled)
    replicas = api.inspect_service(name)["Spec"]["Mode"]["Replicated"]["Replicas"]
    answered = statuses.count(200)
    line = (f"burst of {args.burst} concurrent calls to a cold function: {answered} answered 200 "
            f"(others: {sorted(s for s in statuses if s != 200)}), replicas changed {changes} time(s), "
            f"{replicas} replica(s) after, all answered within {elapsed:.2f} s")
    print(line, flush=True)
    return line


def measure_memory(fleet: Fleet, args) -> list[str]:
    """``--streams`` log streams and as many event streams, each reopened when its deadline
    closes it, while the gateway's RSS is sampled."""
    api = docker.from_env().api
    running = fleet.stack_names[: max(1, args.running // 2)]
    deadline = time.monotonic() + args.memory_minutes * 60
    opened = [0]

    def stream(path: str) -> None:
        parts = urlsplit(fleet.stack)
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            try:
                connection.request("GET", path, headers=fleet.auth)
                response = connection.getresponse()
                opened[0] += 1
                while time.monotonic() < deadline and response.read1(65536):
                    pass
            except OSError:
                time.sleep(1)  # the gateway refused or the read timed out: open it again
            finally:
                connection.close()

    paths = [f"/system/logs?name={running[i % len(running)]}&follow=true" for i in range(args.streams)]
    paths += ["/system/events"] * args.streams
    threads = [threading.Thread(target=stream, args=(path,), daemon=True) for path in paths]
    for thread in threads:
        thread.start()
    samples = []
    while True:
        samples.append(container_rss_mib(api, GATEWAY))
        print(f"memory  {len(samples) * 30 - 30:4d}s  gateway rss {samples[-1]:7.1f} MiB  streams opened {opened[0]}", flush=True)
        if time.monotonic() + 30 > deadline:
            break
        time.sleep(30)  # the sampling period
    for thread in threads:
        thread.join(60)
    return [f"| {args.streams} log + {args.streams} event streams | {args.memory_minutes} min | {samples[0]:.0f} | "
            f"{samples[-1]:.0f} | {max(samples):.0f} | {opened[0]} |"]


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="this stack's URL (nginx)")
    parser.add_argument("--credentials", type=Path, default=ROOT / ".credentials")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--sizes", default="10,100,1000", help="fleet sizes the list is measured at")
    parser.add_argument("--running", type=int, default=50, help="functions at one replica")
    parser.add_argument("--requests", type=int, default=50, help="GETs per list measurement")
    parser.add_argument("--deploys", type=int, default=10)
    parser.add_argument("--churn", type=int, default=20, help="functions deployed and removed during the churn")
    parser.add_argument("--churn-seconds", type=int, default=30)
    parser.add_argument("--churn-rounds", type=int, default=2)
    parser.add_argument("--idle-seconds", type=int, default=60)
    parser.add_argument("--cold", type=int, default=20, help="cold starts per runtime")
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--wake", type=int, default=50, help="cold functions called at once, one call each")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--memory-minutes", type=float, default=10)
    args = parser.parse_args(argv)
    args.parts = [p for p in args.parts.split(",") if p]
    for part in args.parts:
        if part not in PARTS:
            parser.error(f"unknown part {part}: choose from {', '.join(PARTS)}")
    args.sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if "churn" in args.parts and not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    gateway = args.gateway.rstrip("/")
    auth = stack_auth(args.credentials)
    setup = Setup(gateway, auth, ["of-watchdog"], ["stack", "faas-swarm"])
    print(f"# bench.scale {' '.join(argv if argv is not None else sys.argv[1:])}", flush=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %z')}, {os.cpu_count()} cores, {load()}", flush=True)
    report: list[str] = []

    fleet = Fleet(gateway, auth, "", setup.run_id)

    def close() -> None:
        fleet.remove()
        setup.close()

    with cleanly(close):
        setup.start()
        fleet.peer = setup.peer_url
        docker.from_env().api.create_network(fleet.network, driver="overlay", labels={"faas-bench": "scale"})
        if "list" in args.parts:
            report += ["", "GET /system/functions:", *measure_list(fleet, args)]
        fleet.grow(max(args.sizes), args.running)
        wait_until(lambda: call(f"{gateway}/system/functions", headers=auth)[0] == 200, "the stack's API")
        if "idle" in args.parts:
            report += ["", "| idle with the fleet | cpu % of a core | rss MiB |", "|---|---|---|", *measure_idle(fleet, args)]
        if "deploy" in args.parts:
            report += ["", "| deploy to first answer | p50 ms | p99 ms |", "|---|---|---|", *measure_deploy(fleet, args)]
        if "churn" in args.parts:
            report += ["", *measure_churn(fleet, setup.urls["of-watchdog"]["stack"], args)]
        if "cold" in args.parts:
            report += ["", *measure_cold(fleet, args)]
        if "memory" in args.parts:
            report += ["", "| streams | for | rss MiB first | last | max | streams opened |", "|---|---|---|---|---|---|",
                       *measure_memory(fleet, args)]
        print(f"\n# {load()}\n" + "\n".join(report), flush=True)


if __name__ == "__main__":
    main()
