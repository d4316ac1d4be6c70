"""Readings of Docker's JSON (app.runtime.swarm.readings): stats and tasks as dockerd 20.10 wrote them,
and the instances the Swarm adapter reads with them over tests.fakedocker."""

from __future__ import annotations

from app.domain.models import UNMEASURED
from app.runtime.swarm import readings
from tests.unit.helpers import NS, fn

# readings of Docker's JSON, as dockerd 20.10 wrote it on this machine (cgroup v1)

RUNNING_STATS = {
    "read": "2026-12-01T01:40:33.154574184Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 31860252}},
    "memory_stats": {"usage": 1941504, "stats": {"total_inactive_file": 4096, "inactive_file": 4096}},
    "networks": {"eth0": {"rx_bytes": 736, "tx_bytes": 0}, "eth1": {"rx_bytes": 64, "tx_bytes": 10}},
    "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 8}, {"op": "Write", "value": 3},
                                                   {"op": "Total", "value": 11}]},
}
STOPPED_STATS = {"read": "0001-01-01T00:00:00Z", "cpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {},
                 "blkio_stats": {"io_service_bytes_recursive": None}}


def test_stats_read_as_the_docker_cli_reads_them():
    stats = readings.read_stats(RUNNING_STATS, "echo", NS, "t1")
    assert (stats.cpu_seconds, stats.memory_bytes) == (0.031860252, 1941504 - 4096)
    assert (stats.network_rx_bytes, stats.network_tx_bytes) == (800, 10)
    assert (stats.block_read_bytes, stats.block_write_bytes) == (8, 3)
    v2 = {**RUNNING_STATS, "memory_stats": {"usage": 100, "stats": {"inactive_file": 40}}, "networks": None,
          "blkio_stats": {"io_service_bytes_recursive": None}}
    stats = readings.read_stats(v2, "echo", NS, "t1")
    assert stats.memory_bytes == 60
    assert (stats.network_rx_bytes, stats.block_read_bytes) == (UNMEASURED, UNMEASURED)
    assert readings.read_stats(STOPPED_STATS, "echo", NS, "t1") is None


def test_each_slot_is_its_newest_task_with_the_last_exit_before_it():
    def task(tid, slot, created, desired, state, exit_code=None, err=None):
        status = {"State": state, "ContainerStatus": {"ContainerID": tid * 3, "ExitCode": exit_code or 0}}
        return {"ID": tid, "Slot": slot, "CreatedAt": created, "DesiredState": desired, "Status": {**status, "Err": err}}

    tasks = [
        task("b", 1, "2026-12-01T01:40:33.93174385Z", "ready", "ready"),
        # Docker drops trailing zeros: "...33.9Z" is earlier than "...33.93174385Z", though not as a string.
        task("a", 1, "2026-12-01T01:40:33.9Z", "shutdown", "failed", 137, "task: non-zero exit (137)"),
        task("c", 2, "2026-12-01T01:40:30Z", "running", "running"),
        task("d", 3, "2026-12-01T01:40:30Z", "shutdown", "shutdown"),  # scaled away
        # Rolled back: the newer task of slot 4 was given up, the older one runs on.
        task("e", 4, "2026-12-01T01:40:30Z", "running", "running"),
        task("f", 4, "2026-12-01T01:40:40Z", "shutdown", "shutdown"),
    ]
    replicas = readings.current_replicas(tasks)
    assert [(t["ID"], p and p["ID"]) for t, p in replicas] == [("b", "a"), ("c", None), ("e", "f")]
    instance = readings.read_instance(*replicas[0], name="echo", namespace=NS, node="vm", state=None, stats=None)
    assert (instance.exit_code, instance.error, instance.state, instance.desired_state) == (
        137, "task: non-zero exit (137)", "ready", "ready")
    assert instance.health.status == "none" and instance.memory_bytes == UNMEASURED


# Through the Swarm adapter over tests.fakedocker: a function's instances, read from its tasks,
# containers and stats.
def test_instances_of_a_function(runtime, engine):
    runtime.functions.deploy(fn(replicas=2))
    first, second = engine.running_tasks("echo")
    engine.health(first["ID"], "unhealthy", output="no answer on :8080", failing=3)
    replacement = engine.kill(second["ID"])
    instances = runtime.replicas.instances("echo")
    assert [i.id for i in instances] == [first["ID"], replacement]
    one, two = instances
    assert (one.health.status, one.health.failing_streak, one.health.last_output) == ("unhealthy", 3, "no answer on :8080")
    assert (one.node, one.slot, one.state, one.desired_state, one.exit_code) == ("fake-node", 1, "running", "running", None)
    assert one.memory_bytes == 1_941_504 and one.network_rx_bytes == 736 and one.cpu == UNMEASURED
    assert one.started_at and one.started_at.endswith("Z")
    assert (two.exit_code, two.error) == (137, "task: non-zero exit (137)")
    assert two.health.status == "none"


def test_an_instance_on_another_node_is_listed_unmeasured(runtime, engine):
    runtime.functions.deploy(fn())
    (task,) = engine.running_tasks("echo")
    del engine.containers[task["Status"]["ContainerStatus"]["ContainerID"]]  # Docker here has no such container
    (instance,) = runtime.replicas.instances("echo")
    assert instance.id == task["ID"] and instance.memory_bytes == UNMEASURED and instance.health.status == "none"
    assert runtime.replicas.replica_stats("echo") == []
