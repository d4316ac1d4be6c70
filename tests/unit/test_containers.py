"""Replicas' counters read from this node's containers (app/runtime/swarm/containers.py)."""

from __future__ import annotations

import pytest

from app.domain.models import LABEL_SCALE_MIN
from app.errors import NotFound
from tests.fakes import fn


def test_cpu_seconds_of_the_replicas_this_node_can_measure(runtime, engine):
    runtime.functions.deploy(fn(labels={LABEL_SCALE_MIN: "3"}))
    here, elsewhere, starting = engine.running_tasks("echo")
    engine.cpu_usage[here["Status"]["ContainerStatus"]["ContainerID"]] = 2_500_000_000
    # A replica on another node: Docker here has no such container (404), so it is left out.
    del engine.cpu_usage[elsewhere["Status"]["ContainerStatus"]["ContainerID"]]
    starting["Status"]["State"] = "starting"
    assert {(r.instance, r.cpu_seconds) for r in runtime.replicas.replica_stats("echo")} == {(here["ID"], 2.5)}
    with pytest.raises(NotFound):
        runtime.replicas.replica_stats("ghost")
