"""Losing a node and losing a gateway on the local 3-node cluster, under load: failed calls, lost
and duplicated async calls, time to recovery (docs/benchmarks.md, "Cluster faults").

Starts the cluster with `make cluster`'s script (short deadlines, as the cluster tests use) unless
--keep says one is running, runs each scenario of harness/cluster_faults.py --rounds times and
prints one line per figure; removes the cluster afterwards unless --keep. Usage:

    .venv/bin/python -m bench.cluster_faults [--rounds 1] [--keep]
"""

from __future__ import annotations

import argparse
import uuid

from harness.cluster import Cluster, cluster_script
from harness.cluster_faults import DEADLINES, gateway_loss, node_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="use the running cluster and leave it running")
    args = parser.parse_args()
    if not args.keep:
        started = cluster_script("up", DEADLINES)
        if started.returncode:
            raise SystemExit(started.stderr[-3000:])
    try:
        cluster = Cluster()
        for round_number in range(1, args.rounds + 1):
            for scenario in (node_loss, gateway_loss):
                name = f"bench{uuid.uuid4().hex[:6]}"
                try:
                    report = scenario(cluster, name)
                finally:
                    cluster.remove(name)
                print(f"round {round_number}")
                print("\n".join(report.lines()), flush=True)
    finally:
        if not args.keep:
            cluster_script("down")


if __name__ == "__main__":
    main()
