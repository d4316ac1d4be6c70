"""Benchmark GET /system/logs: lines per second for a large tail, and time to the first line.

Starts a gateway under gunicorn (gevent workers) on loopback, deploys the classic-watchdog test image
with a known backlog of lines, measures, and removes everything it created. Needs a Swarm
manager (`make docker`) and the test image (`images/watchdog/build.sh`). Usage:

    .venv/bin/python -m bench.logs [--lines 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import time
import uuid

import docker

from app.runtime.swarm.client import DOCKER_API_VERSION
from bench.common import AUTH, Gateway, call

IMAGE = "faas-test/classic-watchdog:latest"  # make test-image builds it


def _get(gateway: Gateway, query: str) -> tuple[float, float, int]:
    """(seconds to the first line, seconds to the end, lines) for one logs request."""
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=120)
    started = time.perf_counter()
    connection.request("GET", f"/system/logs?{query}", headers=AUTH)
    response = connection.getresponse()
    first = None
    lines = 0
    while response.readline():
        if first is None:
            first = time.perf_counter() - started
        lines += 1
        if "follow=true" in query:
            break
    total = time.perf_counter() - started
    connection.close()
    return first or total, total, lines


def _docker_direct(api: docker.APIClient, service: str) -> tuple[float, int]:
    """Seconds and bytes for Docker's own service-logs endpoint, read raw: the ceiling."""
    started = time.perf_counter()
    data = b"".join(api.service_logs(service, stdout=True, stderr=True, timestamps=True, details=True))
    return time.perf_counter() - started, len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    api = docker.APIClient(version=DOCKER_API_VERSION)
    fn = f"bench-logs-{uuid.uuid4().hex[:6]}"
    gateway = Gateway(workers="1", write_timeout="5m").wait_ready()
    try:
        body = {"service": fn, "image": IMAGE, "envVars": {"log_burst": str(args.lines), "log_interval": "1"}}
        assert call(f"{gateway.url}/system/functions", "POST", body, AUTH)[0] == 202
        deadline = time.monotonic() + 120
        while f"burst {args.lines}\"".encode() not in call(f"{gateway.url}/system/logs?name={fn}", headers=AUTH)[1]:
            if time.monotonic() > deadline:
                raise SystemExit("the function did not log its backlog in time")
            time.sleep(1)

        tails = [_get(gateway, f"name={fn}&tail={args.lines}") for _ in range(args.rounds)]
        everything = [_get(gateway, f"name={fn}") for _ in range(args.rounds)]
        firsts = [_get(gateway, f"name={fn}&follow=true&tail=1")[0] for _ in range(args.rounds * 4)]
        direct = [_docker_direct(api, fn) for _ in range(args.rounds)]

        def rate(samples):
            return statistics.median(lines / total for _, total, lines in samples)

        print(f"lines in the backlog            {args.lines}")
        print(f"tail={args.lines} (sorted merge)     {rate(tails):10.0f} lines/s  (median of {args.rounds})")
        print(f"no tail (streamed as read)      {rate(everything):10.0f} lines/s  (median of {args.rounds})")
        print(f"first line, follow=true&tail=1  {statistics.median(firsts) * 1000:10.1f} ms      (median of {len(firsts)})")
        print(f"first line, tail={args.lines}        {statistics.median(t[0] for t in tails) * 1000:10.1f} ms")
        lines_direct = max(lines for _, _, lines in everything)
        ceiling = statistics.median(lines_direct / seconds for seconds, _ in direct)
        print(f"Docker's endpoint read raw      {ceiling:10.0f} lines/s  (ceiling)")
    finally:
        call(f"{gateway.url}/system/functions", "DELETE", {"functionName": fn}, AUTH)
        gateway.stop()


if __name__ == "__main__":
    main()
