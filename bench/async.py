"""Async calls beside sync calls, on each queue backend of the stack.

Calls accepted and completed per second, accept-to-start times, status reads with many calls
retained, and a burst's effect on another function. For each backend in --backends (`sqlite`: a new
file in the gateway's state volume; `redis`: a redis-server of the run's own on the host,
append-only with an fsync per write, as docs/api.md asks of a production one), the stack from
`make up` is restarted on a fresh queue (`make up` with ASYNC_QUEUE, as the end-to-end tests switch
it). Before the restart the queue gets --retained finished calls written into it through
app.queue, as the gateway and its workers write them (put, take, finish), so every measurement runs
with that many calls retained. Then, with a trivial function (the of-watchdog test image echoing
the body without forking, one replica), and --clients threads each on a kept-alive connection:

  sync      --calls POSTs to /function/NAME through nginx: calls/s, p50 and p99 ms
  async     --calls POSTs to /async-function/NAME, each with an X-Call-Id of the run's: accepted/s
            (202s over the time to send them all) and the 202's p50 and p99 ms; once every record
            is final, completed/s (calls over the first acceptedAt to the last finishedAt) and
            accept-to-start p50 and p99 (startedAt - acceptedAt: when a worker took the call); and
            in the log, the calls left when the last was accepted and how fast they were done
  status    GET /system/async-calls/{id} of random retained calls, --reads at c1 and at c16
  fairness  --burst calls to function A (a handler sleeping --burst-sleep s, so a backlog forms
            and a duration is there to measure against), then one call to function B (the
            trivial one): B's accept-to-start against A's median duration, and how many of A's
            calls were still waiting when B was accepted (none: the burst proved nothing)

and prints one table per measurement, backends side by side with the sync row, and the goals
(completed async throughput at least half the sync one; status reads under 5 ms p50 with 100,000
calls retained; B delayed by at most a few, FAIR_DURATIONS, of A's durations), met or not. At
the end the stack is restarted on its own queue (a plain `make up`), and the functions, the queue
files and the redis-server are removed, also on failure, Ctrl-C and SIGTERM.

Needs the stack up from this checkout (`make up`: it is restarted with this checkout's make),
redis-server (`make tools`) and the function images (built here, as bench/invoke.py does).
`async` is a keyword, so this module is run, never imported:

    .venv/bin/python -m bench.async [--backends sqlite,redis] [--calls 2000] [--retained 100000]
        [--burst 10000] [--burst-sleep 0.05] [--reads 1000] [--clients 16] [--patience 600]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from app.config import Config
from app.queue import ACTIVE, FINISHED, SUCCEEDED, AsyncCall, CallResult, Outcome, open_queue
from bench.common import call, cleanly, stack_auth, wait_until
from bench.invoke import ONE_REPLICA, RUNTIMES, ensure_function_images, load
from harness import ROOT, docker
from harness.redis_server import RedisServer, docker_bridge_address

BACKENDS = ("sqlite", "redis")
IMAGE = RUNTIMES["of-watchdog"]
BODY = b"ping"
# "A burst does not delay a call to another function by more than a few of its own durations."
FAIR_DURATIONS = 3
# Calls written per batch while filling a queue, and the threads writing: SQLite has one writer
# whatever the threads, a Redis with an fsync per write answers several clients per fsync.
FILL_BATCH = 200
FILL_THREADS = {"sqlite": 1, "redis": 8}
FILL_PATIENCE = 3600
PAGE = 1000  # the list endpoint's largest page


# ----------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def concurrently(base: str, requests: list[Request], clients: int, timeout: float = 60) -> tuple[list[tuple[int, float]], float]:
    """Send ``requests`` from ``clients`` threads, each on a kept-alive connection of its own
    (reopened after a failure), each taking the next request not sent yet: (status, seconds) per
    request in their order (status 0: no answer), and the seconds from the first sent to the
    last answered. SystemExit when the clients are not done within their timeouts."""
    parts = urlsplit(base)
    answers: list[tuple[int, float] | None] = [None] * len(requests)
    turns = itertools.count()  # its next() is atomic: each request goes to one client

    def client() -> None:
        connection = None
        while (index := next(turns)) < len(requests):
            request = requests[index]
            started = time.perf_counter()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
                connection.request(request.method, request.path, body=request.body, headers=request.headers)
                response = connection.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                status = 0
                if connection is not None:
                    connection.close()
                connection = None
            answers[index] = (status, time.perf_counter() - started)
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    # Each request is bounded by its socket timeouts (connect, send, each read).
    deadline = time.monotonic() + 3 * timeout * (len(requests) // clients + 1)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise SystemExit(f"the clients of {base} were not done in time")
    return answers, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def unix(text: str | None) -> float | None:
    """An RFC 3339 time of a record (nanoseconds cut to micro), as unix seconds."""
    return datetime.fromisoformat(text).timestamp() if text else None


@dataclass
class Stack:
    """The stack `make up` started from this checkout: its URL, credentials and containers."""

    url: str
    auth: dict[str, str]
    project: str

    def gateway(self) -> str:
        found = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={self.project}",
                       "--filter", "label=com.docker.compose.service=gateway").split()
        if not found:
            raise SystemExit(f"no gateway container of compose project {self.project}: run `make up`")
        return found[0]

    def config(self) -> Config:
        """The gateway's configuration as its container's environment makes it."""
        env = json.loads(docker("inspect", "-f", "{{json .Config.Env}}", self.gateway()))
        return Config.from_env(dict(item.split("=", 1) for item in env))

    def state_volume(self) -> tuple[str, Path]:
        """The gateway's state folder, as the container sees it and on the host (its volume)."""
        state_dir = self.config().state_dir
        mounts = json.loads(docker("inspect", "-f", "{{json .Mounts}}", self.gateway()))
        for mount in mounts:
            if mount["Destination"] == state_dir and mount["Type"] == "volume":
                return state_dir, Path(mount["Source"])
        raise SystemExit(f"the gateway's state folder {state_dir} is not on a volume")

    def make_up(self, async_queue: str | None) -> float:
        """`make up` from this checkout, on queue ``async_queue`` (None: the stack's own); seconds taken."""
        env = dict(os.environ) if async_queue is None else {**os.environ, "ASYNC_QUEUE": async_queue}
        started = time.monotonic()
        done = subprocess.run(["make", "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode:
            raise SystemExit(f"`make up` failed:\n{done.stderr[-3000:]}")
        if async_queue is not None and self.config().async_queue != async_queue:
            raise SystemExit(f"the gateway did not switch to {async_queue}")
        return time.monotonic() - started

    def get(self, path: str, **query) -> dict:
        status, body, _ = call(f"{self.url}{path}{'?' + urlencode(query) if query else ''}", headers=self.auth,
                               timeout=30)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {body[:200]!r}")
        return json.loads(body)

    def records(self, function: str, ids: set[str]) -> dict[str, dict]:
        """The records of ``ids`` among ``function``'s (one walk through its listing)."""
        found, after = {}, ""
        for _ in range(len(ids) // PAGE + 100):  # more pages than the function can have
            page = self.get("/system/async-calls", function=function, limit=PAGE, after=after)
            found.update((r["callId"], r) for r in page["calls"] if r["callId"] in ids)
            after = page["next"]
            if not after:
                return found
        raise SystemExit(f"the listing of {function}'s calls did not end")

    def wait_final(self, function: str, patience: float) -> None:
        """Until none of ``function``'s calls is queued, running or retrying; SystemExit after ``patience`` s."""
        def settled() -> bool:
            return not any(self.get("/system/async-calls", function=function, state=state, limit=1)["calls"]
                           for state in sorted(ACTIVE))

        wait_until(settled, f"{function}'s async calls to finish", patience, interval=1.0)


def sync_calls(stack: Stack, function: str, count: int, clients: int) -> dict:
    requests = [Request("POST", f"/function/{function}", BODY)] * count
    answers, seconds = concurrently(stack.url, requests, clients)
    times = [s for status, s in answers if status == 200]
    return {"calls": count, "rate": count / seconds, "p50": statistics.median(times) * 1000,
            "p99": percentile(times, 0.99) * 1000, "errors": count - len(times)}


def accept(stack: Stack, function: str, ids: list[str], clients: int) -> tuple[float, int, list[float]]:
    """POST one async call of ``function`` per id: accepted per second, calls not accepted, and
    the seconds each 202 took."""
    requests = [Request("POST", f"/async-function/{function}", BODY, {"X-Call-Id": i}) for i in ids]
    answers, seconds = concurrently(stack.url, requests, clients)
    return len(ids) / seconds, sum(status != 202 for status, _ in answers), [s for status, s in answers if status == 202]


def async_calls(stack: Stack, function: str, ids: list[str], clients: int, patience: float) -> dict:
    accepted, refused, times = accept(stack, function, ids, clients)
    stack.wait_final(function, patience)
    records = list(stack.records(function, set(ids)).values())
    succeeded = [r for r in records if r["state"] == SUCCEEDED]
    if not succeeded:
        states = statistics.multimode(r["state"] for r in records) if records else ["no record"]
        raise SystemExit(f"none of the {len(ids)} async calls to {function} succeeded (mostly {', '.join(states)})")
    waits = [unix(r["startedAt"]) - unix(r["acceptedAt"]) for r in succeeded]
    last_accepted, last_finished = max(unix(r["acceptedAt"]) for r in records), max(unix(r["finishedAt"]) for r in succeeded)
    span = last_finished - min(unix(r["acceptedAt"]) for r in records)
    # What the workers still had to do once accepting was over, and how fast they did it: when
    # it is small, accepting bounded completing.
    backlog = sum(1 for r in succeeded if unix(r["finishedAt"]) > last_accepted)
    return {"calls": len(ids), "accepted": accepted, "completed": len(succeeded) / span,
            "p50": statistics.median(times) * 1000, "p99": percentile(times, 0.99) * 1000, "backlog": backlog,
            "drain": backlog / (last_finished - last_accepted) if backlog else 0.0,
            "wait_p50": statistics.median(waits) * 1000, "wait_p99": percentile(waits, 0.99) * 1000,
            "errors": refused + len(ids) - len(succeeded)}


def status_reads(stack: Stack, ids: list[str], reads: int, clients: int) -> dict:
    requests = [Request("GET", f"/system/async-calls/{i}", headers=stack.auth) for i in random.choices(ids, k=reads)]
    answers, seconds = concurrently(stack.url, requests, clients)
    times = [s for status, s in answers if status == 200]
    return {"p50": statistics.median(times) * 1000, "p99": percentile(times, 0.99) * 1000,
            "rate": reads / seconds, "errors": reads - len(times)}


def fairness(stack: Stack, burst_fn: str, other_fn: str, ids: list[str], other_id: str, clients: int,
             patience: float) -> dict:
    burst_rate, refused, _ = accept(stack, burst_fn, ids, clients)
    status, text, _ = call(f"{stack.url}/async-function/{other_fn}", "POST", BODY, {"X-Call-Id": other_id})
    if status != 202:
        raise SystemExit(f"the call to {other_fn} was refused: {status} {text!r}")

    def other_final() -> bool:
        return stack.get(f"/system/async-calls/{other_id}")["state"] in FINISHED

    wait_until(other_final, f"the call to {other_fn} to finish", patience, interval=0.2)
    stack.wait_final(burst_fn, patience)
    other = stack.get(f"/system/async-calls/{other_id}")
    burst = list(stack.records(burst_fn, set(ids)).values())
    accepted, started = unix(other["acceptedAt"]), unix(other["startedAt"])
    durations = [r["durationSeconds"] for r in burst if r["durationSeconds"] is not None]
    burst_waits = [unix(r["startedAt"]) - unix(r["acceptedAt"]) for r in burst if r["startedAt"]]
    return {
        "burst": len(ids), "accepted": burst_rate, "refused": refused, "state": other["state"],
        "waiting": sum(1 for r in burst if not r["startedAt"] or unix(r["startedAt"]) > accepted),
        "wait": (started - accepted) * 1000, "other_duration": (other["durationSeconds"] or 0) * 1000,
        "duration": statistics.median(durations) * 1000, "burst_wait": statistics.median(burst_waits) * 1000,
        "failed": sum(1 for r in burst if r["state"] != SUCCEEDED),
    }


# ----------------------------------------------------------------------------- set-up


def retain(url: str, count: int, function: str, namespace: str, prefix: str, threads: int) -> list[str]:
    """``count`` finished calls of ``function`` in the queue at ``url``, each put, taken and
    finished as the gateway and its workers do it (same request and answer as the benchmark's
    calls); their ids. Returns once all are finished."""
    ids = [f"{prefix}{n}" for n in range(count)]
    result = CallResult(200, [("Content-Type", "text/plain")], BODY, False)
    done = Outcome(SUCCEEDED, 200, 0.001, None, result, None)
    finished = [0] * threads

    def finish_ready(queue, consumer: str, index: int) -> None:
        for _ in range(count):  # every take finishes at least one call, or ends the loop
            taken = queue.take(consumer, FILL_BATCH, 0)
            if not taken:
                return
            for delivery in taken:
                queue.finish(delivery, done)
            finished[index] += len(taken)

    def fill(index: int) -> None:
        queue = open_queue(url)
        try:
            mine = ids[index::threads]
            for start in range(0, len(mine), FILL_BATCH):
                for call_id in mine[start:start + FILL_BATCH]:
                    queue.put(AsyncCall(call_id, function, namespace, "POST", "", "",
                                        [("Content-Type", "text/plain"), ("X-Call-Id", call_id)], BODY, None,
                                        time.time()))
                finish_ready(queue, f"bench-fill-{index}", index)
            finish_ready(queue, f"bench-fill-{index}", index)  # what another thread put after its own take
        finally:
            queue.close()

    workers = [threading.Thread(target=fill, args=(i,), daemon=True) for i in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers):
        if time.monotonic() - started > FILL_PATIENCE:
            raise SystemExit(f"writing {count} retained calls to {url} took over {FILL_PATIENCE} s")
        next(worker for worker in workers if worker.is_alive()).join(10)
        print(f"#   {sum(finished):,} of {count:,} retained calls written, {time.monotonic() - started:.0f} s", flush=True)
    queue = open_queue(url)
    try:
        finish_ready(queue, "bench-fill", 0)
        kept = queue.counts()[SUCCEEDED]
    finally:
        queue.close()
    if kept < count:
        raise SystemExit(f"only {kept} of {count} retained calls were written to {url}")
    return ids


@dataclass
class Run:
    """Everything one run creates; ``close`` removes it all and puts the stack back on its queue."""

    stack: Stack
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    functions: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    servers: list[RedisServer] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    switched: bool = False

    def deploy(self, name: str, env: dict[str, str]) -> None:
        self.functions.append(name)
        body = {"service": name, "image": IMAGE, "labels": ONE_REPLICA, "envVars": env}
        status, text, _ = call(f"{self.stack.url}/system/functions", "POST", body, self.stack.auth)
        if status != 202:
            raise SystemExit(f"the gateway refused to deploy {name}: {status} {text!r}")

    def fresh_queue(self, backend: str) -> tuple[str, str]:
        """A new, empty queue of ``backend``: its URL from here, and from the gateway's container."""
        if backend == "sqlite":
            inside, host = self.stack.state_volume()
            name = f"bench-async-{self.run_id}.db"
            self.files.append(host / name)
            return f"sqlite:///{host / name}", f"sqlite:///{inside}/{name}"
        folder = tempfile.mkdtemp(prefix=f"bench-async-{self.run_id}-redis-")
        self.folders.append(folder)
        server = RedisServer(Path(folder), also_on=docker_bridge_address()).start()
        self.servers.append(server)
        return server.local_url, server.url

    def hand_over(self, backend: str) -> None:
        """The gateway's user must own a queue file written here (as root), as it owns its folder."""
        if backend == "sqlite":
            owner = self.files[-1].parent.stat()
            for path in self._with_companions(self.files[-1]):
                os.chown(path, owner.st_uid, owner.st_gid)

    @staticmethod
    def _with_companions(path: Path) -> list[Path]:
        return [p for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))) if p.exists()]

    def close(self) -> None:
        steps = [("the functions", self._remove_functions)]
        if self.switched:
            steps.append(("the stack's own queue", self._restore))
        steps += [("the redis-servers", self._stop_servers), ("the queue files", self._remove_files)]
        for what, step in steps:
            try:
                step()
            except (Exception, SystemExit) as exc:  # every clean-up runs whatever one of them raised
                print(f"clean-up of {what} failed: {exc}", file=sys.stderr)
        made = self.functions + [str(p) for p in self.files] + self.folders
        print(f"removed: {', '.join(made) or 'nothing'}", flush=True)

    def _remove_functions(self) -> None:
        for name in self.functions:
            try:
                call(f"{self.stack.url}/system/functions", "DELETE", {"functionName": name}, self.stack.auth, timeout=30)
            except OSError:
                pass
        existing = set(docker("service", "ls", "--format", "{{.Name}}", check=False).split())
        leftover = [name for name in self.functions if name in existing]
        if leftover:
            docker("service", "rm", *leftover, check=False)

    def _restore(self) -> None:
        print("# restarting the stack on its own queue (make up)", flush=True)
        self.stack.make_up(None)
        self.switched = False

    def _stop_servers(self) -> None:
        for server in self.servers:
            server.stop()
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)

    def _remove_files(self) -> None:
        for path in self.files:
            for companion in self._with_companions(path):
                companion.unlink()


# ----------------------------------------------------------------------------- report


def tables(results: dict, args) -> str:
    lines = [
        "| backend | mode | calls | calls/s accepted | calls/s completed | answer p50 / p99 ms "
        "| accept-to-start p50 / p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for backend, r in results.items():
        s, a = r["sync"], r["async"]
        lines.append(f"| {backend} | sync | {s['calls']} | – | {s['rate']:.0f} | {s['p50']:.2f} / {s['p99']:.2f} | – "
                     f"| {s['errors']} |")
        lines.append(f"| {backend} | async | {a['calls']} | {a['accepted']:.0f} | {a['completed']:.0f} "
                     f"| {a['p50']:.2f} / {a['p99']:.2f} "
                     f"| {a['wait_p50']:.1f} / {a['wait_p99']:.1f} | {a['errors']} |")
        share = a["completed"] / s["rate"]
        verdicts.append(f"{backend}: completed async {a['completed']:.0f}/s = {share:.2f}x sync's {s['rate']:.0f}/s "
                        f"({'met' if share >= 0.5 else 'NOT met'}: at least 0.5x)")
    lines += ["", f"| backend | retained | status read c1 p50 / p99 ms | c{args.clients} p50 / p99 ms "
              f"| reads/s c{args.clients} | errors |", "|---|---|---|---|---|---|"]
    for backend, r in results.items():
        one, many = r["status_c1"], r["status_cn"]
        lines.append(f"| {backend} | {r['retained']:,} | {one['p50']:.2f} / {one['p99']:.2f} "
                     f"| {many['p50']:.2f} / {many['p99']:.2f} | {many['rate']:.0f} | {one['errors'] + many['errors']} |")
        size = "" if r["retained"] >= 100_000 else f"; only {r['retained']:,} retained, not the goal's 100,000"
        verdicts.append(f"{backend}: status read p50 {one['p50']:.2f} ms at c1 "
                        f"({'met' if one['p50'] < 5 else 'NOT met'}: under 5 ms{size})")
    lines += ["", "| backend | burst | burst accepted/s | A waiting when B came | B accept-to-start ms | B ms "
              "| A median ms | A accept-to-start p50 ms | A failed |", "|---|---|---|---|---|---|---|---|---|"]
    for backend, r in results.items():
        f = r["fairness"]
        lines.append(f"| {backend} | {f['burst']:,} | {f['accepted']:.0f} | {f['waiting']:,} | {f['wait']:.1f} "
                     f"| {f['other_duration']:.1f} | {f['duration']:.1f} | {f['burst_wait']:.0f} | {f['failed']} |")
        bound = FAIR_DURATIONS * f["duration"]
        void = "" if f["waiting"] else "; no backlog when B came, so this proves nothing"
        verdicts.append(f"{backend}: B started {f['wait']:.1f} ms after it was accepted, ahead of {f['waiting']:,} "
                        f"calls of A waiting since before it ({'met' if f['wait'] <= bound else 'NOT met'}: at most "
                        f"{FAIR_DURATIONS} of A's {f['duration']:.1f} ms{void})")
    return "\n".join(lines + [""] + verdicts)


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="this stack's URL (nginx)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,redis")
    parser.add_argument("--calls", type=int, default=2000, help="sync calls, and async calls, per backend")
    parser.add_argument("--retained", type=int, default=100_000, help="finished calls written to each queue first")
    parser.add_argument("--burst", type=int, default=10_000, help="async calls to function A before B's one")
    parser.add_argument("--burst-sleep", type=float, default=0.05, help="seconds each of A's calls takes (0: trivial)")
    parser.add_argument("--reads", type=int, default=1000, help="status reads at c1, and again at --clients")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--patience", type=float, default=600, help="seconds calls get to finish")
    args = parser.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    for value in args.backends:
        if value not in BACKENDS:
            parser.error(f"unknown backend {value}: choose from {', '.join(BACKENDS)}")
    for name in ("calls", "retained", "burst", "reads", "clients"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def compose_project() -> str:
    env_file = ROOT / ".env"
    for line in env_file.read_text().splitlines() if env_file.exists() else []:
        if line.startswith("COMPOSE_PROJECT_NAME="):
            return line.split("=", 1)[1]
    raise SystemExit(f"no stack started from {ROOT}: run `make up` there")


def check_stack(stack: Stack) -> None:
    """The stack answers and was started from this checkout, whose `make up` the run restarts it with."""
    started_in = docker("inspect", "-f", '{{index .Config.Labels "com.docker.compose.project.working_dir"}}',
                        stack.gateway())
    if Path(started_in) != ROOT:
        raise SystemExit(f"the stack was started from {started_in}, not {ROOT}: run the benchmark there")
    if call(f"{stack.url}/healthz", timeout=5)[0] != 200:
        raise SystemExit(f"{stack.url}/healthz does not answer: run `make up`")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if "redis" in args.backends and shutil.which("redis-server") is None:
        raise SystemExit("redis-server is missing: make tools")
    stack = Stack(args.gateway.rstrip("/"), stack_auth(ROOT / ".credentials"), compose_project())
    check_stack(stack)
    run = Run(stack)
    print(f"# bench.async {' '.join(argv if argv is not None else sys.argv[1:])}", flush=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %z')}, {os.cpu_count()} cores, {load()}", flush=True)
    results = {}
    with cleanly(run.close):
        ensure_function_images()
        echo, burst, other = (f"bench-{run.run_id}-{role}" for role in ("echo", "burst", "other"))
        run.deploy(echo, {})
        run.deploy(burst, {"handler": f"sleep {args.burst_sleep:g}"} if args.burst_sleep else {})
        run.deploy(other, {})
        for name in (echo, burst, other):
            wait_until(lambda: call(f"{stack.url}/function/{name}", "POST", BODY, timeout=10)[0] == 200,
                       f"{name} to answer", 120)
        for backend in args.backends:
            mine, theirs = run.fresh_queue(backend)
            namespace = stack.config().namespace
            print(f"# {backend}: writing {args.retained:,} finished calls to {mine}", flush=True)
            retained = retain(mine, args.retained, f"bench-{run.run_id}-retained", namespace, f"r{run.run_id}-",
                              FILL_THREADS[backend])
            run.hand_over(backend)
            run.switched = True
            print(f"# {backend}: gateway restarted on {theirs} in {stack.make_up(theirs):.0f} s", flush=True)
            config = stack.config()
            print(f"# {backend}: workers {config.workers}, async_concurrency {config.async_concurrency}, "
                  f"async_function_concurrency {config.async_function_concurrency}", flush=True)
            warm = f"w{run.run_id}-{backend}"
            if accept(stack, echo, [warm], 1)[1]:
                raise SystemExit(f"the gateway on {theirs} refused an async call to {echo}")
            wait_until(lambda: stack.get(f"/system/async-calls/{warm}")["state"] == SUCCEEDED, "a first async call",
                       60, interval=0.2)
            result = results[backend] = {"retained": args.retained}
            result["sync"] = sync_calls(stack, echo, args.calls, args.clients)
            print(f"# {backend} sync: {result['sync']}  {load()}", flush=True)
            ids = [f"a{run.run_id}-{backend}-{n}" for n in range(args.calls)]
            result["async"] = async_calls(stack, echo, ids, args.clients, args.patience)
            print(f"# {backend} async: {result['async']}  {load()}", flush=True)
            result["status_c1"] = status_reads(stack, retained, args.reads, 1)
            result["status_cn"] = status_reads(stack, retained, args.reads, args.clients)
            print(f"# {backend} status reads: c1 {result['status_c1']}, c{args.clients} {result['status_cn']}  "
                  f"{load()}", flush=True)
            ids = [f"b{run.run_id}-{backend}-{n}" for n in range(args.burst)]
            result["fairness"] = fairness(stack, burst, other, ids, f"o{run.run_id}-{backend}", args.clients,
                                          args.patience)
            print(f"# {backend} fairness: {result['fairness']}  {load()}", flush=True)
        print(f"\n# {load()}\n{tables(results, args)}", flush=True)


if __name__ == "__main__":
    main()
