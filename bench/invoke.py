"""Benchmark invocation through the gateway against calling the same function directly.

Needs the stack from `make up` (nginx -> gunicorn gevent workers -> function task) and wrk
(`apt-get install wrk`). Deploys the watchdog test image once through the gateway and once as a
plain service with a host-mode published port (the baseline), measures both in the same run, and
removes what it created. Usage:

    .venv/bin/python -m bench.invoke [--requests 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import docker

from app.swarm.provider import DOCKER_API_VERSION
from tests.gateway import ROOT, basic_auth, call

IMAGE = "faas-test/watchdog:latest"
DIRECT_PORT = 18099


def _latencies(url: str, count: int) -> list[float]:
    """Sequential calls over one kept-alive connection (reopened when the server closes it)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", parts.path, body=b"ping")
        response = connection.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
    connection.close()
    return samples


def _wrk(url: str, connections: int, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def _wait(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if call(url, "POST", headers={"Authorization": ""})[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()

    credentials = Path(ROOT, ".credentials")
    auth = basic_auth((credentials / "basic-auth-user").read_text(), (credentials / "basic-auth-password").read_text())
    api = docker.APIClient(version=DOCKER_API_VERSION)
    fn = f"bench-echo-{uuid.uuid4().hex[:6]}"
    direct = api.create_service(
        {"ContainerSpec": {"Image": IMAGE, "Env": ["fprocess=cat"]}},
        name=f"{fn}-direct",
        endpoint_spec={"Mode": "dnsrr", "Ports": [{"TargetPort": 8080, "PublishedPort": DIRECT_PORT, "PublishMode": "host"}]},
    )
    try:
        body = {"service": fn, "image": IMAGE, "envProcess": "cat"}
        assert call(f"{args.gateway}/system/functions", "POST", body, auth)[0] == 202
        through, baseline = f"{args.gateway}/function/{fn}", f"http://127.0.0.1:{DIRECT_PORT}/"
        _wait(through)
        _wait(baseline)
        rows = []
        for label, url in (("direct (host-mode port)", baseline), ("through nginx + gateway", through)):
            samples = sorted(_latencies(url, args.requests))
            p50 = statistics.median(samples) * 1000
            p99 = samples[int(len(samples) * 0.99) - 1] * 1000
            rows.append((label, p50, p99, _wrk(url, 16, args.seconds), _wrk(url, 64, args.seconds)))
        print(f"{'path':28} {'p50 ms':>8} {'p99 ms':>8} {'rps c16':>9} {'rps c64':>9}")
        for label, p50, p99, c16, c64 in rows:
            print(f"{label:28} {p50:8.2f} {p99:8.2f} {c16:9.0f} {c64:9.0f}")
        (_, d50, _, d16, _), (_, g50, _, g16, _) = rows
        print(f"added p50 latency: {g50 - d50:.2f} ms (target <= 1 ms)")
        print(f"throughput at c16: {100 * g16 / d16:.0f}% of direct (target >= 80%)")
    finally:
        call(f"{args.gateway}/system/functions", "DELETE", {"functionName": fn}, auth)
        api.remove_service(direct["ID"])


if __name__ == "__main__":
    main()
