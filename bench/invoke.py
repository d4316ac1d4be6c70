"""Invocation side by side: the function called directly, through this stack, and through faas-swarm.

One run measures, for each runtime built from the real watchdogs in $OPENFAAS_BIN_DIR (`classic`: the
classic watchdog forking its process per call; `of-watchdog`: of-watchdog mode=http in front of a
kept-running upstream), the same function image three ways:

  direct      a plain Swarm service with a host-mode published port (the floor)
  stack       deployed through this gateway, called through the stack's nginx (`make up`), which
              routes calls to the function's tasks itself
  faas-swarm  deployed through the Go provider faas-swarm 0.9.1, run as a peer service on the
              same Swarm with a host-mode port (no nginx in front of it: it is its own gateway)

and prints p50 ms over N sequential POSTs on one kept-alive connection, rps from `wrk -t2` at
c16 and c64 (POST, `bench/post.lua`), medians of interleaved rounds, each path's ratios to the
direct path and to faas-swarm, and issue 25's verdicts (at least 0.85x the direct path's rps;
added p50 at most 0.4 ms classic, 0.15 ms of-watchdog). `--sustained` instead runs wrk for 60 s
at c64 and c512 and reports non-2xx responses and socket errors. Everything it creates (services; the peer's image is kept by name
and rebuilt only when the binary changes) is removed at the end, on failure and on Ctrl-C.

Needs wrk (`apt-get install wrk`; not installed by this script), the stack from `make up` (or
`--gateway` and `--credentials` for another), and the test images (`images/watchdog/build.sh`,
run here every time, so they are never an older build's). Usage:

    .venv/bin/python -m bench.invoke [--requests 500] [--seconds 10] [--rounds 2]
        [--runtimes classic,of-watchdog] [--paths direct,stack,faas-swarm] [--via LABEL=URL]
        [--sustained [--sustained-seconds 60]]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from bench.common import call, cleanly, openfaas_binary, stack_auth, wait_until
from harness import ROOT, docker

RUNTIMES = {
    "classic": "faas-test/classic-watchdog:latest",
    "of-watchdog": "faas-test/of-watchdog:latest",
}
PATHS = ("direct", "stack", "faas-swarm")
PEER = "faas-swarm"
PEER_IMAGE = "faas-bench/faas-swarm:0.9.1"
PEER_LABEL = "faas-bench.binary-sha256"
FUNCTIONS_NETWORK = "func_functions"
# One replica on every path, also while the stack's autoscaler watches (min == max turns it off):
# the paths are compared per replica.
ONE_REPLICA = {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "1"}
POST_SCRIPT = Path(__file__).with_name("post.lua")
# Host-mode ports for the direct services and the peer come from here (outside the ephemeral
# range, which wrk and the proxies use up for their own connections).
PORT_RANGE = range(18200, 18400)
WARMUP_CALLS = 20


# ----------------------------------------------------------------------------- measurement


def latencies(url: str, count: int, method: str = "POST", headers: dict[str, str] | None = None,
              warmup: int = WARMUP_CALLS) -> list[float]:
    """Seconds per call for ``count`` sequential calls (a POST of a small body, or a GET) over
    one kept-alive connection, after ``warmup`` calls. A GET the server closed the connection
    under is sent again on a new one, as HTTP clients do; any other failure ends the run."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    body, headers = (b"ping", {"Content-Type": "text/plain", **(headers or {})}) if method == "POST" else (None, headers or {})
    samples = []
    try:
        for i in range(warmup + count):
            started = time.perf_counter()
            try:
                connection.request(method, parts.path, body=body, headers=headers)
                response = connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if method != "GET":
                    raise
                connection.close()
                connection.request(method, parts.path, headers=headers)
                response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                raise SystemExit(f"{url} answered {response.status} during the latency run")
            if i >= warmup:
                samples.append(elapsed)
    finally:
        connection.close()
    return samples


@dataclass
class Wrk:
    rps: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def describe(self) -> str:
        sockets = ", ".join(f"{k} {v}" for k, v in self.socket_errors.items())
        percentiles = " ".join(f"p{k} {v:.2f}" for k, v in self.latency_ms.items())
        return (
            f"{self.rps:9.0f} rps  {self.requests} requests  non-2xx {self.non_2xx}  "
            f"socket: {sockets}  latency ms: {percentiles}"
        )


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(output: str) -> Wrk:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()))) if sockets else {}
    latency = {
        pct: float(value) * _UNITS[unit]
        for pct, value, unit in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    }
    return Wrk(rps, requests, int(non_2xx.group(1)) if non_2xx else 0, socket_errors, latency)


def wrk(url: str, connections: int, seconds: int, timeout: str = "2s") -> Wrk:
    """``wrk -t2`` POSTing to ``url``; wrk's own timeout (2 s by default) counts as a socket error."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout}", "--latency"]
    result = subprocess.run(
        [*command, "-s", str(POST_SCRIPT), url], capture_output=True, text=True, timeout=seconds + 60
    )
    if result.returncode:
        raise SystemExit(f"wrk failed on {url}: {result.stderr.strip()}")
    return parse_wrk(result.stdout)


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def time_wait(container: str) -> str:
    """TCP sockets in use and in TIME_WAIT inside a container's network namespace."""
    pid = docker("inspect", "-f", "{{.State.Pid}}", container, check=False)
    try:
        text = Path(f"/proc/{pid}/net/sockstat").read_text()
    except (OSError, ValueError):
        return f"{container}: gone"
    match = re.search(r"TCP: inuse (\d+) orphan \d+ tw (\d+)", text)
    return f"{container}: tcp inuse {match.group(1)} time_wait {match.group(2)}" if match else ""


# ----------------------------------------------------------------------------- set-up


def ensure_function_images() -> None:
    """Build the function images every run (2 s): an image left by an older build.sh (the
    of-watchdog upstream once forked per connection) would be measured by mistake."""
    print("building the test images", flush=True)
    subprocess.run(["bash", str(ROOT / "images" / "watchdog" / "build.sh")], check=True, stdout=subprocess.DEVNULL)


def ensure_peer_image() -> str:
    """The faas-swarm image: the binary alone on a tiny root filesystem, `docker import`ed.

    Kept by name and rebuilt only when the binary's digest (stored as a label) changes.
    """
    path = openfaas_binary("faas-swarm")
    binary = path.read_bytes()
    digest = hashlib.sha256(binary).hexdigest()
    label = docker("image", "inspect", "-f", f'{{{{index .Config.Labels "{PEER_LABEL}"}}}}', PEER_IMAGE, check=False)
    if label == digest:
        return PEER_IMAGE
    print(f"building {PEER_IMAGE} from {path}", flush=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(name: str, mode: int, data: bytes | None = None) -> None:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = mode, int(time.time())
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        add("etc", 0o755)
        add("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")
        add("tmp", 0o1777)
        add("faas-swarm", 0o755, binary)
    docker(
        "import", "--change", 'CMD ["/faas-swarm"]', "--change", "EXPOSE 8080",
        "--change", f"LABEL {PEER_LABEL}={digest}", "-", PEER_IMAGE, input=buffer.getvalue(),
    )
    return PEER_IMAGE


def _free_host_port(taken: set[int]) -> int:
    for port in PORT_RANGE:
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise SystemExit(f"no free host port in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")


def _answers(url: str) -> bool:
    return call(url, "POST", b"ping", {"Content-Type": "text/plain"}, timeout=5)[0] == 200


@dataclass
class Setup:
    """Everything one run creates, with the URL of every (runtime, path); `close` removes it all."""

    gateway: str
    auth: dict[str, str]
    runtimes: list[str]
    paths: list[str]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    urls: dict[str, dict[str, str]] = field(default_factory=dict)
    stack_functions: dict[str, str] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    # Containers whose TCP TIME_WAIT count --sustained prints (experiments add theirs).
    watch: list[str] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)
    peer_url: str = ""

    def name(self, runtime: str, path: str) -> str:
        return f"bench-{self.run_id}-{'cl' if runtime == 'classic' else 'of'}-{path}"

    def service(self, name: str, image: str, *args: str) -> None:
        """`docker service create`, recorded for clean-up before it is asked for."""
        self.services.append(name)
        docker(
            "service", "create", "--detach", "--no-resolve-image", "--quiet", "--name", name,
            "--endpoint-mode", "dnsrr", *args, image,
        )

    def start(self) -> "Setup":
        ensure_function_images()
        if PEER in self.paths:
            port = _free_host_port(self.ports)
            self.service(
                f"bench-{self.run_id}-peer-faas-swarm", ensure_peer_image(),
                "--publish", f"mode=host,target=8080,published={port}",
                "--mount", "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock",
                "--env", "dnsrr=true", "--env", "basic_auth=false",
                "--env", "read_timeout=65s", "--env", "write_timeout=65s",
                "--network", FUNCTIONS_NETWORK, "--constraint", "node.role==manager",
            )
            self.peer_url = f"http://127.0.0.1:{port}"
        for runtime in self.runtimes:
            image, urls = RUNTIMES[runtime], self.urls.setdefault(runtime, {})
            if "direct" in self.paths:
                port, name = _free_host_port(self.ports), self.name(runtime, "direct")
                self.service(name, image, "--publish", f"mode=host,target=8080,published={port}")
                urls["direct"] = f"http://127.0.0.1:{port}/"
            if "stack" in self.paths:
                name = self.name(runtime, "stack")
                self.services.append(name)
                body = {"service": name, "image": image, "labels": ONE_REPLICA}
                status, body, _ = call(f"{self.gateway}/system/functions", "POST", body, self.auth)
                if status != 202:
                    raise SystemExit(f"the gateway refused to deploy {name}: {status} {body!r}")
                self.stack_functions[runtime] = name
                urls["stack"] = f"{self.gateway}/function/{name}"
        if PEER in self.paths:
            wait_until(lambda: call(f"{self.peer_url}/system/functions", timeout=5)[0] == 200, "faas-swarm to start")
            for runtime in self.runtimes:
                name = self.name(runtime, "fs")
                self.services.append(name)
                body = {"service": name, "image": RUNTIMES[runtime], "network": FUNCTIONS_NETWORK, "labels": ONE_REPLICA}
                status, text, _ = call(f"{self.peer_url}/system/functions", "POST", body)
                if status not in (200, 202):
                    raise SystemExit(f"faas-swarm refused to deploy {name}: {status} {text!r}")
                self.urls[runtime][PEER] = f"{self.peer_url}/function/{name}"
        for runtime, urls in self.urls.items():
            for path, url in urls.items():
                wait_until(lambda: _answers(url), f"{runtime} {path} at {url}")
        return self

    def add_path(self, label: str, urls: dict[str, str], cleanup: Callable[[], None] | None = None) -> None:
        """Another way to the same functions (an experiment), measured beside the others."""
        if cleanup:
            self.cleanups.append(cleanup)
        for runtime, url in urls.items():
            self.urls[runtime][label] = url
            wait_until(lambda: _answers(url), f"{runtime} {label} at {url}")

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as exc:  # every clean-up runs whatever one of them raised
                print(f"clean-up failed: {exc}", file=sys.stderr)
        for name in self.stack_functions.values():
            try:
                call(f"{self.gateway}/system/functions", "DELETE", {"functionName": name}, self.auth, timeout=30)
            except OSError:
                pass
        existing = set(docker("service", "ls", "--format", "{{.Name}}", check=False).split())
        leftover = [name for name in self.services if name in existing]
        if leftover:
            docker("service", "rm", *leftover, check=False)
        print(f"removed: {', '.join(self.services) or 'nothing'}", flush=True)


# ----------------------------------------------------------------------------- runs


def ordered(labels: list[str], turn: int) -> list[str]:
    """The paths in a rotated order, so no path is always measured first or last."""
    turn %= len(labels)
    return labels[turn:] + labels[:turn]


def benchmark(setup: Setup, args) -> dict:
    """results[runtime][path] = {"p50": [...], "c16": [Wrk...], "c64": [Wrk...]} over the rounds."""
    results: dict = {}
    for round_ in range(args.rounds):
        print(f"# round {round_ + 1}/{args.rounds}, {load()}", flush=True)
        for runtime in setup.runtimes:
            labels = list(setup.urls[runtime])
            for metric in ("p50", "c16", "c64"):
                for label in ordered(labels, round_):
                    url = setup.urls[runtime][label]
                    entry = results.setdefault(runtime, {}).setdefault(label, {"p50": [], "c16": [], "c64": []})
                    if metric == "p50":
                        value = statistics.median(latencies(url, args.requests)) * 1000
                        entry["p50"].append(value)
                        print(f"{runtime:12} {label:24} p50 {value:8.3f} ms ({args.requests} calls)  {load()}", flush=True)
                    else:
                        result = wrk(url, int(metric[1:]), args.seconds)
                        entry[metric].append(result)
                        print(f"{runtime:12} {label:24} {metric} {result.describe()}  {load()}", flush=True)
    return results


# Issue 25's goals for a path in front of the function: this share of the direct path's calls per
# second at c16 and c64, and at most this much added p50 (ms) per runtime.
DIRECT_SHARE = 0.85
ADDED_P50 = {"classic": 0.4, "of-watchdog": 0.15}


def table(setup: Setup, results: dict, rounds: int) -> str:
    lines = [
        f"medians of {rounds} round(s)",
        "",
        "| runtime | path | p50 ms | added p50 ms | rps c16 | rps c64 | c16 / direct | c64 / direct "
        "| c16 / faas-swarm | c64 / faas-swarm | wrk errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for runtime, paths in results.items():
        medians = {
            label: {
                "p50": statistics.median(entry["p50"]),
                "c16": statistics.median(w.rps for w in entry["c16"]),
                "c64": statistics.median(w.rps for w in entry["c64"]),
                "errors": sum(w.errors for w in entry["c16"] + entry["c64"]),
            }
            for label, entry in paths.items()
        }
        direct = medians.get("direct")
        peer = medians.get(PEER)

        def ratio(m: dict, of: dict | None, load: str) -> str:
            return f"{m[load] / of[load]:.2f}" if of else "-"

        for label, m in medians.items():
            added = f"{m['p50'] - direct['p50']:.3f}" if direct else "-"
            lines.append(
                f"| {runtime} | {label} | {m['p50']:.3f} | {added} | {m['c16']:.0f} | {m['c64']:.0f} "
                f"| {ratio(m, direct, 'c16')} | {ratio(m, direct, 'c64')} "
                f"| {ratio(m, peer, 'c16')} | {ratio(m, peer, 'c64')} | {m['errors']} |"
            )
            if direct and label not in ("direct", PEER):
                limit = ADDED_P50.get(runtime, ADDED_P50["classic"])
                ok_p50 = m["p50"] - direct["p50"] <= limit
                ok_rps = min(m["c16"] / direct["c16"], m["c64"] / direct["c64"]) >= DIRECT_SHARE
                verdicts.append(
                    f"{runtime} {label}: added p50 {m['p50'] - direct['p50']:+.3f} ms ({'met' if ok_p50 else 'NOT met'}: "
                    f"at most {limit} ms); throughput {ratio(m, direct, 'c16')}x / {ratio(m, direct, 'c64')}x direct "
                    f"at c16 / c64 ({'met' if ok_rps else 'NOT met'}: >= {DIRECT_SHARE})"
                    + (f"; {ratio(m, peer, 'c16')}x / {ratio(m, peer, 'c64')}x faas-swarm" if peer else "")
                )
    return "\n".join(lines + [""] + verdicts)


def sustained(setup: Setup, args) -> str:
    """wrk for ``--sustained-seconds`` at c64 and c512 on each path but direct; errors reported."""
    rows = [
        "| runtime | path | connections | rps | requests | non-2xx | socket errors | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    named = [c for c in args.watch.split(",") if c] + setup.watch
    containers = [c for c in named if docker("ps", "-q", "-f", f"name=^{c}$", check=False)]
    for runtime in setup.runtimes:
        for label, url in setup.urls[runtime].items():
            if label.startswith("direct") and "direct" not in args.sustained_paths:
                continue
            for connections in (64, 512):
                result = wrk(url, connections, args.sustained_seconds, timeout="10s")
                sockets = ", ".join(f"{k} {v}" for k, v in result.socket_errors.items())
                watched = "; ".join(time_wait(c) for c in containers)
                print(f"{runtime:12} {label:24} c{connections} {result.describe()}  {load()}  {watched}", flush=True)
                rows.append(
                    f"| {runtime} | {label} | {connections} | {result.rps:.0f} | {result.requests} | "
                    f"{result.non_2xx} | {sockets} | {result.latency_ms.get('99', float('nan')):.1f} |"
                )
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="this stack's URL (nginx)")
    parser.add_argument("--credentials", type=Path, default=ROOT / ".credentials", help="basic-auth files for --gateway")
    parser.add_argument("--requests", type=int, default=500, help="sequential calls for p50")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (medians are reported)")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated: classic,of-watchdog")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated: direct,stack,faas-swarm")
    parser.add_argument(
        "--via", action="append", default=[], metavar="LABEL=URL",
        help="also call the stack's functions at URL/function/NAME (another proxy in front of the same gateway)",
    )
    parser.add_argument("--sustained", action="store_true", help="instead: wrk at c64 and c512 for --sustained-seconds")
    parser.add_argument("--sustained-seconds", type=int, default=60)
    parser.add_argument("--sustained-paths", default="stack,faas-swarm", help="with --sustained: add direct to include it")
    parser.add_argument(
        "--watch", default="openfaas_nginx_1,openfaas_gateway_1",
        help="with --sustained: containers whose TCP TIME_WAIT count is printed after each run",
    )
    args = parser.parse_args(argv)
    args.runtimes = [r for r in args.runtimes.split(",") if r]
    args.paths = [p for p in args.paths.split(",") if p]
    for value in args.runtimes:
        if value not in RUNTIMES:
            parser.error(f"unknown runtime {value}: choose from {', '.join(RUNTIMES)}")
    for value in args.paths:
        if value not in PATHS:
            parser.error(f"unknown path {value}: choose from {', '.join(PATHS)}")
    for value in args.via:
        if "=" not in value:
            parser.error(f"--via wants LABEL=URL, not {value}")
    if args.sustained and "direct" not in args.sustained_paths and "direct" in args.paths:
        args.paths.remove("direct")  # not measured, so not deployed
    if args.via and "stack" not in args.paths:
        parser.error("--via calls the stack's functions: keep stack in --paths")
    return args


def main(argv: list[str] | None = None, prepare: Callable[[Setup], None] | None = None) -> None:
    """Run the benchmark; ``prepare`` may add experimental paths to the set-up before measuring."""
    args = parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    auth = stack_auth(args.credentials) if "stack" in args.paths else {}
    setup = Setup(args.gateway.rstrip("/"), auth, args.runtimes, args.paths)
    print(f"# bench.invoke {' '.join(argv if argv is not None else sys.argv[1:])}", flush=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %z')}, {os.cpu_count()} cores, {load()}", flush=True)
    with cleanly(setup.close):
        setup.start()
        for value in args.via:
            label, base = value.split("=", 1)
            setup.add_path(label, {r: f"{base.rstrip('/')}/function/{fn}" for r, fn in setup.stack_functions.items()})
        if prepare:
            prepare(setup)
        for runtime, urls in setup.urls.items():
            for label, url in urls.items():
                print(f"# {runtime:12} {label:24} {url}", flush=True)
        if args.sustained:
            report = sustained(setup, args)
        else:
            report = table(setup, benchmark(setup, args), args.rounds)
        print(f"\n# {load()}\n{report}", flush=True)


if __name__ == "__main__":
    main()
