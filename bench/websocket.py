"""Websockets side by side: the echo function (images/websocket/echo.py) called directly, through this
stack's nginx (its direct route), and through the gateway's own tunnel (at gunicorn itself).

  direct   a plain Swarm service with a host-mode published port (the floor)
  stack    deployed through the gateway, called through the stack's nginx (`make up`)
  gateway  the same function, called at the gateway container's gunicorn (its tunnel)

For each path it prints the round-trip p50 and p99 in ms over N sequential 32-byte messages on one
connection, and messages per second with C connections each sending and awaiting one message at
a time for S seconds (medians of interleaved rounds). Everything it creates is removed at the
end, on failure and on Ctrl-C. The websocket-client package is the client (the test extras).

    .venv/bin/python -m bench.websocket [--messages 2000] [--connections 16] [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

import websocket

from bench.common import call, cleanly, stack_auth, wait_until
from bench.invoke import _free_host_port, load
from harness import ROOT, bridge_ip, docker

IMAGE = "faas-test/websocket-echo:latest"
PATHS = ("direct", "stack", "gateway")
PAYLOAD = "x" * 32


def round_trips(url: str, count: int) -> list[float]:
    """Milliseconds of ``count`` sequential echoes on one connection."""
    ws = websocket.create_connection(url, timeout=30)
    try:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            ws.send(PAYLOAD)
            ws.recv()
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        ws.close()


def throughput(url: str, connections: int, seconds: float) -> float:
    """Echoed messages per second over ``connections`` connections, each one at a time."""
    counts = [0] * connections
    deadline = time.monotonic() + seconds
    sockets = [websocket.create_connection(url, timeout=30) for _ in range(connections)]

    def run(index: int) -> None:
        ws = sockets[index]
        while time.monotonic() < deadline:
            ws.send(PAYLOAD)
            ws.recv()
            counts[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.monotonic() - started
    for ws in sockets:
        ws.close()
    return sum(counts) / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="this stack's URL (nginx)")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    auth = stack_auth(ROOT / ".credentials")
    gateway = args.gateway.rstrip("/")
    run_id = uuid.uuid4().hex[:6]
    direct, fn = f"bench-{run_id}-ws-direct", f"bench-{run_id}-ws"
    print(f"# bench.websocket {' '.join(argv if argv is not None else sys.argv[1:])}", flush=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %z')}, {os.cpu_count()} cores, {load()}", flush=True)
    made = []

    def remove() -> None:
        if fn in made:
            call(f"{gateway}/system/functions", "DELETE", {"functionName": fn}, auth, timeout=30)
        if direct in made:
            docker("service", "rm", direct, check=False)
        print(f"removed: {', '.join(made) or 'nothing'}", flush=True)

    with cleanly(remove):
        subprocess.run(["bash", str(ROOT / "images/websocket/build.sh")], check=True, capture_output=True)
        port = _free_host_port(set())
        made.append(direct)
        docker("service", "create", "--detach", "--quiet", "--no-resolve-image", "--name", direct,
               "--endpoint-mode", "dnsrr", "--publish", f"mode=host,target=8080,published={port}", IMAGE)
        made.append(fn)
        body = {"service": fn, "image": IMAGE, "labels": {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "1"}}
        status, text, _ = call(f"{gateway}/system/functions", "POST", body, auth)
        if status != 202:
            raise SystemExit(f"the gateway refused to deploy {fn}: {status} {text!r}")
        gunicorn = docker("ps", "-q", "--filter", "label=com.docker.compose.service=gateway").split()[0]
        urls = {
            "direct": f"ws://127.0.0.1:{port}/echo",
            "stack": f"{gateway.replace('http://', 'ws://')}/function/{fn}/echo",
            "gateway": f"ws://{bridge_ip(gunicorn)}:8080/function/{fn}/echo",
        }
        for path, url in urls.items():
            wait_until(lambda: round_trips(url, 1) is not None, f"{path} at {url}", 120)
        results = {path: {"p50": [], "p99": [], "rate": []} for path in PATHS}
        for round_ in range(args.rounds):
            for path in PATHS[round_ % 3:] + PATHS[:round_ % 3]:
                times = sorted(round_trips(urls[path], args.messages))
                results[path]["p50"].append(times[len(times) // 2])
                results[path]["p99"].append(times[int(len(times) * 0.99)])
                results[path]["rate"].append(throughput(urls[path], args.connections, args.seconds))
                print(f"# round {round_ + 1} {path}: p50 {results[path]['p50'][-1]:.3f} ms, "
                      f"{results[path]['rate'][-1]:.0f} msg/s", flush=True)
        floor = statistics.median(results["direct"]["p50"])
        lines = [f"\n# {load()}", f"| path | p50 ms | added p50 ms | p99 ms | msg/s at c{args.connections} |",
                 "|---|---|---|---|---|"]
        for path in PATHS:
            p50 = statistics.median(results[path]["p50"])
            lines.append(f"| {path} | {p50:.3f} | {p50 - floor:+.3f} | {statistics.median(results[path]['p99']):.3f} "
                         f"| {statistics.median(results[path]['rate']):.0f} |")
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
