"""The cluster suite: a real 3-node Swarm started with `make cluster` (scripts/cluster.sh) once for
this folder's tests, and removed with `make cluster-down` as soon as they are done, also when a
test failed: the node containers run their own dockerd, which must be gone before the session's
last test stops the host's.

Every function a test deploys has a name of its own and is removed by the test's fixture; a node a
test kills is started again before the test ends. With CLUSTER_KEEP=1 an already running cluster
is used and left running (for a person iterating on these tests; start it with the short
deadlines of harness.cluster_faults.DEADLINES, which the fault tests check).
"""

from __future__ import annotations

import os
import uuid

import pytest

from harness.cluster import Cluster, cluster_script
from harness.cluster_faults import DEADLINES


@pytest.fixture(scope="package")
def cluster() -> Cluster:
    keep = os.environ.get("CLUSTER_KEEP") == "1"
    try:
        if not keep:
            started = cluster_script("up", DEADLINES)
            assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-5000:]
        yield Cluster()
    finally:
        if not keep:
            stopped = cluster_script("down")
            assert stopped.returncode == 0, stopped.stderr


@pytest.fixture
def name(cluster: Cluster):
    """A function name of the test's own; the function is removed afterwards, wherever it is."""
    made = f"c{uuid.uuid4().hex[:8]}"
    yield made
    cluster.remove(made)
