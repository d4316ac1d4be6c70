"""What asking every node costs: the API's reads on the local 3-node cluster with many functions
(docs/benchmarks.md, "Cluster fan-out").

Deploys --functions functions at one replica each (spread over the three nodes by Swarm) and one
at three replicas, then times, --rounds times each: `GET /system/functions` without and with
`?usage=1` (usage comes from the sampler, which asks every node's agent every 5 s while someone
watches), and `GET /system/function/NAME/instances` of the three-replica function (one request to
each node's agent, in parallel). Prints p50 and p99 in ms; removes its functions. Needs a running
cluster (`make cluster`). Usage:

    .venv/bin/python -m bench.cluster_fanout [--functions 100] [--rounds 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from harness.cluster import Cluster


def _time(cluster: Cluster, path: str, rounds: int) -> tuple[float, float]:
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = cluster.api("GET", path)
        took.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    took.sort()
    return statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    cluster = Cluster()
    prefix = f"fan{uuid.uuid4().hex[:4]}"
    names = [f"{prefix}-{number}" for number in range(args.functions)]
    wide = f"{prefix}-wide"
    try:
        for name in names:
            cluster.deploy(name, replicas=1)
        cluster.deploy(wide, replicas=3)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            statuses = cluster.api("GET", "/system/functions").json()
            ours = [s for s in statuses if s["name"].startswith(prefix)]
            if len(ours) == args.functions + 1 and all(s["availableReplicas"] == s["replicas"] for s in ours):
                break
            time.sleep(2)
        else:
            raise SystemExit("the functions did not all start within 10 minutes")
        nodes = {i["node"] for i in cluster.api("GET", f"/system/function/{wide}/instances").json()}
        cluster.api("GET", "/system/functions?usage=1")  # wakes the samplers
        time.sleep(12)  # two sampling rounds, so usage has a rate
        with_usage = cluster.api("GET", "/system/functions?usage=1").json()
        measured = sum(1 for s in with_usage if s["name"].startswith(prefix) and s.get("usage"))
        print(f"functions: {args.functions + 1} (replicas: {args.functions + 3}) on nodes {sorted(nodes)}")
        print(f"functions with usage measured: {measured}")
        for label, path in (("GET /system/functions", "/system/functions"),
                            ("GET /system/functions?usage=1", "/system/functions?usage=1"),
                            ("GET /system/function/NAME/instances (3 nodes)", f"/system/function/{wide}/instances")):
            p50, p99 = _time(cluster, path, args.rounds)
            print(f"{label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    finally:
        for name in [*names, wide]:
            cluster.remove(name)


if __name__ == "__main__":
    main()
