"""The runtime view over the in-memory Docker: usage, instances and the event stream.

The Swarm adapter's readings of stats, inspect and tasks, its event normaliser and stream
(reconnecting when Docker goes and comes back), the background sampler, and the three routes
through the HTTP layer, all over ``tests.fakedocker`` answering as dockerd 20.10 does.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
import time
from pathlib import Path

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import response_schema_conformance

import app as app_package
from app import create_app
from app.background.usage import UsageSampler
from app.config import Config
from app.domain.models import (
    FUNCTION_DELETED,
    FUNCTION_DEPLOYED,
    FUNCTION_SCALED,
    FUNCTION_UPDATED,
    LABEL_NAMESPACE,
    LABEL_SCALE_MIN,
    REPLICA_DIED,
    REPLICA_HEALTHY,
    REPLICA_OOM,
    REPLICA_STARTED,
    STREAM_DISCONNECTED,
    STREAM_RECONNECTED,
    UNMEASURED,
    EventRequest,
    FunctionDeployment,
    FunctionEvent,
)
from app.errors import BackendUnavailable
from app.runtime.swarm import readings
from app.runtime.swarm.docker_events import KnownFunction, SwarmEventSource, normalise
from app.web.streaming import sse_stream
from tests.unit.conftest import deployment
from tests.waiting import wait_for

NS = "openfaas-fn"


def fn(name: str = "echo", replicas: int = 1) -> FunctionDeployment:
    return FunctionDeployment(service=name, image="img:1", labels={LABEL_SCALE_MIN: str(replicas)})


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
    ]
    replicas = readings.current_replicas(tasks)
    assert [(t["ID"], p and p["ID"]) for t, p in replicas] == [("b", "a"), ("c", None)]
    instance = readings.read_instance(*replicas[0], name="echo", namespace=NS, node="vm", state=None, stats=None)
    assert (instance.exit_code, instance.error, instance.state, instance.desired_state) == (
        137, "task: non-zero exit (137)", "ready", "ready")
    assert instance.health.status == "none" and instance.memory_bytes == UNMEASURED


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


# the event normaliser, on the events dockerd sent for a deploy, scale, kill and delete

KNOWN = {"svc1": KnownFunction("echo", NS, 1)}


def _container_event(action, **attributes):
    labels = {"com.openfaas.function": "echo", "com.docker.swarm.task.id": "task1", "name": "echo.1.task1"}
    return {"Type": "container", "Action": action, "Actor": {"ID": "c1", "Attributes": {**labels, **attributes}},
            "timeNano": 1796089196498041761}


@pytest.mark.parametrize("event, expected", [
    ({"Type": "service", "Action": "create", "Actor": {"ID": "svc1", "Attributes": {"name": "echo"}}, "timeNano": 5},
     FunctionEvent(FUNCTION_DEPLOYED, "1970-01-01T00:00:00.000000005Z", "echo", NS, replicas=1)),
    ({"Type": "service", "Action": "update", "timeNano": 5,
      "Actor": {"ID": "svc1", "Attributes": {"name": "echo", "replicas.new": "2", "replicas.old": "1"}}},
     FunctionEvent(FUNCTION_SCALED, "1970-01-01T00:00:00.000000005Z", "echo", NS, replicas=2, previous_replicas=1)),
    ({"Type": "service", "Action": "update", "timeNano": 5,
      "Actor": {"ID": "svc1", "Attributes": {"name": "echo", "updatestate.new": "updating"}}},
     FunctionEvent(FUNCTION_UPDATED, "1970-01-01T00:00:00.000000005Z", "echo", NS, rollout="updating")),
    ({"Type": "service", "Action": "remove", "Actor": {"ID": "svc1", "Attributes": {"name": "echo"}}, "time": 2},
     FunctionEvent(FUNCTION_DELETED, "1970-01-01T00:00:02.000000000Z", "echo", NS)),
    ({"Type": "service", "Action": "create", "Actor": {"ID": "other", "Attributes": {"name": "web"}}, "timeNano": 5},
     None),
    (_container_event("die", exitCode="137"),
     FunctionEvent(REPLICA_DIED, "2026-12-01T01:39:56.498041761Z", "echo", NS, instance="task1", exit_code=137)),
    (_container_event("health_status: healthy"),
     FunctionEvent(REPLICA_HEALTHY, "2026-12-01T01:39:56.498041761Z", "echo", NS, instance="task1")),
    (_container_event("start", **{LABEL_NAMESPACE: "team-a"}),
     FunctionEvent(REPLICA_STARTED, "2026-12-01T01:39:56.498041761Z", "echo", "team-a", instance="task1")),
    (_container_event("oom"), FunctionEvent(REPLICA_OOM, "2026-12-01T01:39:56.498041761Z", "echo", NS, instance="task1")),
    (_container_event("exec_die", exitCode="0"), None),
    (_container_event("start", **{"com.openfaas.function": ""}), None),
])
def test_docker_events_normalised(event, expected):
    assert normalise(event, KNOWN, NS) == expected


# the event stream over the fake Docker


class Reader:
    """Iterates an event stream in a thread, so a test can wait for each event with a bound."""

    def __init__(self, stream):
        self.stream = stream
        self.events: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for batch in self.stream:
            for event in batch:
                self.events.put(event)
        self.events.put(None)

    def next(self, kind: str | None = None) -> FunctionEvent:
        """The next event (of ``kind``, skipping others); fails after 5 s without one."""
        while True:
            event = self.events.get(timeout=5)
            assert event is not None, f"the stream ended before a {kind} event"
            if kind is None or event.type == kind:
                return event

    def close(self):
        self.stream.close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture
def events(runtime, engine):
    readers = []

    def open_stream(request=EventRequest(NS), **source):
        reader = Reader(SwarmEventSource(runtime.events.lookup, **source).open(request))
        readers.append(reader)
        engine.wait_for_watchers(len(readers))
        return reader

    yield open_stream
    for reader in readers:
        reader.close()


def test_a_deploy_a_kill_a_scale_and_a_delete_seen_on_the_stream(runtime, engine, events):
    reader = events()
    runtime.functions.deploy(fn())
    deployed = reader.next(FUNCTION_DEPLOYED)
    assert (deployed.name, deployed.namespace, deployed.replicas) == ("echo", NS, 1)
    (task,) = engine.running_tasks("echo")
    assert reader.next(REPLICA_STARTED).instance == task["ID"]
    engine.kill(task["ID"])
    died = reader.next(REPLICA_DIED)
    assert (died.instance, died.exit_code) == (task["ID"], 137)
    runtime.functions.scale("echo", 3)
    scaled = reader.next(FUNCTION_SCALED)
    assert (scaled.replicas, scaled.previous_replicas) == (3, 1)
    runtime.functions.delete("echo")
    assert reader.next(FUNCTION_DELETED).name == "echo"


def test_a_stream_for_one_function_sees_only_its_events(runtime, engine, events):
    runtime.functions.deploy(fn("other"))
    reader = events(EventRequest(NS, "echo"))
    runtime.functions.scale("other", 2)
    runtime.functions.deploy(fn("echo"))
    engine.oom(engine.running_tasks("echo")[0]["ID"])
    assert [reader.next().type for _ in range(4)] == [FUNCTION_DEPLOYED, REPLICA_STARTED, REPLICA_OOM, REPLICA_DIED]
    assert all(event.name == "echo" for event in [reader.next(REPLICA_STARTED)])


def test_another_namespace_is_not_seen(runtime, engine, events):
    reader = events(EventRequest("team-a"))
    runtime.functions.deploy(fn())
    runtime.functions.delete("echo")
    reader.stream.close()
    assert reader.events.get(timeout=5) is None  # nothing of openfaas-fn came through


def test_the_stream_says_when_docker_went_away_and_came_back(runtime, engine, events):
    reader = events(retry_wait=0.01, max_retry_wait=0.05)
    runtime.functions.deploy(fn())
    reader.next(FUNCTION_DEPLOYED)
    engine.down = True
    engine.close()  # the daemon stops: its streams end
    assert reader.next(STREAM_DISCONNECTED).message
    engine.down = False
    engine.create_service({**engine.service("echo")["Spec"], "Name": "late", "Labels": {"com.openfaas.function": "late"}})
    assert reader.next().type == STREAM_RECONNECTED
    # Deployed while the stream was away, learnt on the way back; nothing sent before is sent again.
    late = reader.next()
    assert (late.type, late.name) == (FUNCTION_DEPLOYED, "late")
    runtime.functions.scale("late", 2)
    assert reader.next(FUNCTION_SCALED).name == "late"


def test_an_event_stream_cannot_open_without_docker(runtime, engine):
    engine.down = True
    with pytest.raises(BackendUnavailable):
        SwarmEventSource(runtime.events.lookup).open(EventRequest(NS))


# the sampler


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_usage_is_the_cpu_rate_and_memory_summed_over_replicas(runtime, engine):
    clock = Clock()
    sampler = UsageSampler(runtime.replicas, interval=5, keep_for=60, clock=clock)
    runtime.functions.deploy(fn(replicas=2))
    runtime.functions.deploy(fn("other"))
    assert sampler.usage(NS, "echo") is None  # nothing sampled yet: absent, not zero
    sampler.sample()
    assert sampler.usage(NS, "echo") is None  # one reading is no rate
    for task in engine.running_tasks("echo"):
        engine.cpu_usage[task["Status"]["ContainerStatus"]["ContainerID"]] += 250_000_000  # 0.25 s each
    clock.now += 5
    sampler.sample()
    usage = sampler.usage(NS, "echo")
    assert usage.cpu == pytest.approx(100.0)  # 2 x 0.25 s over 5 s = 100 millicores
    assert usage.total_memory_bytes == 2 * 1_941_504
    assert sampler.usage(NS, "other").cpu == 0
    assert sampler.usage("team-a", "echo") is None
    (first, _) = sampler.with_cpu(runtime.replicas.instances("echo"))
    assert first.cpu == pytest.approx(50.0)


def test_the_sampler_runs_only_while_usage_was_asked_for_recently(runtime):
    clock = Clock()
    sampler = UsageSampler(runtime.replicas, interval=5, keep_for=60, clock=clock)
    assert not sampler.sampling
    sampler.usage(NS, "echo")
    clock.now += 59
    assert sampler.sampling
    sampler.with_cpu([])
    clock.now += 59
    assert sampler.sampling
    clock.now += 1
    assert not sampler.sampling


def test_an_ask_wakes_the_sampler_and_never_waits_on_stats(runtime, engine):
    runtime.functions.deploy(fn())
    sampler = UsageSampler(runtime.replicas, interval=0.05, keep_for=60)
    sampler.start()
    try:
        stats_calls = lambda: engine.count("GET", r"/containers/[^/]+/stats")  # noqa: E731
        engine.inject("GET", r"/containers/[^/]+/stats", lambda: time.sleep(0.3), times=None)
        started = time.monotonic()
        assert sampler.usage(NS, "echo") is None
        assert time.monotonic() - started < 0.2  # the stats take 0.3 s each: nobody waited on them
        wait_for(lambda: sampler.usage(NS, "echo"), timeout=10, interval=0.05, what="usage sampled")
        assert stats_calls() >= 2
    finally:
        sampler.stop()


# the routes


def test_usage_on_the_status_when_asked_for(client, app, engine):
    client.post("/system/functions", json=deployment())
    assert "usage" not in client.get("/system/function/echo").get_json()
    sampler = app.extensions["openfaas"].usage
    sampler.sample()
    engine.cpu_usage[engine.running_tasks("echo")[0]["Status"]["ContainerStatus"]["ContainerID"]] += 10**9
    sampler.sample()
    usage = client.get("/system/function/echo?usage=1").get_json()["usage"]
    assert usage["cpu"] > 0 and usage["totalMemoryBytes"] == 1_941_504
    assert "usage" not in client.get("/system/function/echo?usage=false").get_json()
    (listed,) = client.get("/system/functions?usage=true").get_json()
    assert listed["usage"]["totalMemoryBytes"] == 1_941_504


@pytest.mark.parametrize("path", ["/system/function/echo?usage=maybe", "/system/functions?usage=2"])
def test_a_bad_usage_flag_is_a_400_naming_it(client, path):
    client.post("/system/functions", json=deployment())
    response = client.get(path)
    assert response.status_code == 400 and "usage" in response.get_data(as_text=True)


def test_instances_route(client, engine):
    client.post("/system/functions", json=deployment(labels={LABEL_SCALE_MIN: "2"}))
    instances = client.get("/system/function/echo/instances").get_json()
    assert [i["id"] for i in instances] == [t["ID"] for t in engine.running_tasks("echo")]
    assert set(instances[0]) == {
        "id", "name", "namespace", "slot", "node", "state", "desiredState", "health", "startedAt", "exitCode",
        "error", "cpu", "memoryBytes", "networkRxBytes", "networkTxBytes", "blockReadBytes", "blockWriteBytes"}
    assert instances[0]["health"] == {"status": "none", "failingStreak": 0, "lastOutput": None}
    assert instances[0]["cpu"] == -1 and instances[0]["blockReadBytes"] == 0
    assert client.get("/system/function/ghost/instances").status_code == 404
    assert client.get("/system/function/echo/instances?namespace=elsewhere").status_code == 400


def _sse(response) -> list[dict]:
    lines = response.get_data(as_text=True).splitlines()
    return [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]


def test_events_route_streams_sse_until_the_deadline(app, client, engine):
    client.post("/system/functions", json=deployment())
    deploy_later = threading.Thread(target=lambda: (engine.wait_for_watchers(1), client.delete(
        "/system/functions", json={"functionName": "echo"})))
    deploy_later.start()
    response = client.get("/system/events?function=echo")
    deploy_later.join(timeout=5)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no"
    body = response.get_data(as_text=True)
    assert body.startswith(": stream open\n\n")
    assert "event: function.deleted\ndata: " in body
    (deleted,) = [event for event in _sse(response) if event["type"] == FUNCTION_DELETED]
    assert deleted == {"type": FUNCTION_DELETED, "time": deleted["time"], "name": "echo", "namespace": NS}
    # As the service's document says (the fuzzed cases only ever meet a quiet stream).
    document = schemathesis.openapi.from_path(str(Path(app_package.__file__).with_name("openapi.yaml")))
    case = document["/system/events"]["GET"].Case(query={"function": "echo"})
    case.validate_response(response, checks=[response_schema_conformance])


@pytest.mark.parametrize("query, field", [("function=Not_A_Name", "function"), ("namespace=elsewhere", "elsewhere")])
def test_events_route_refuses_bad_queries(client, query, field):
    response = client.get(f"/system/events?{query}")
    assert response.status_code == 400 and field in response.get_data(as_text=True)


def test_event_and_log_streams_share_one_cap(runtime, logs):
    app = create_app(Config(basic_auth=False, max_log_streams=1), dataclasses.replace(runtime, logs=logs))
    client = app.test_client()
    client.post("/system/functions", json=deployment())
    first = client.get("/system/events", buffered=False)
    assert first.status_code == 200
    refused = client.get("/system/logs?name=echo")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    first.close()
    assert client.get("/system/logs?name=echo").status_code == 200


def test_a_quiet_event_stream_sends_heartbeats():
    class Quiet:
        closed = threading.Event()

        def __iter__(self):
            self.closed.wait(10)
            return iter([])

        def close(self):
            self.closed.set()

    body = sse_stream(Quiet(), lambda e: {}, deadline=10, client=None, heartbeat=0.01)
    assert next(body) == b": stream open\n\n"
    assert next(body) == b": heartbeat\n\n"
    body.close()
    assert Quiet.closed.is_set()  # leaving the stream closes its source
