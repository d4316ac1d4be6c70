"""Docker's events as function events (app.runtime.swarm.docker_events): the normaliser, and the
stream over tests.fakedocker, which says when Docker went away and came back."""

from __future__ import annotations

import queue
import threading

import pytest

from app.domain.models import (
    NODE_DOWN,
    NODE_READY,
    FUNCTION_DELETED,
    FUNCTION_DEPLOYED,
    FUNCTION_SCALED,
    FUNCTION_UPDATED,
    LABEL_NAMESPACE,
    REPLICA_DIED,
    REPLICA_HEALTHY,
    REPLICA_OOM,
    REPLICA_STARTED,
    STREAM_DISCONNECTED,
    STREAM_RECONNECTED,
    UPDATE_ROLLED_BACK,
    Rollout,
    EventRequest,
    FunctionDeployment,
    FunctionEvent,
)
from app.errors import BackendUnavailable
from app.runtime.swarm.docker_events import KnownFunction, SwarmEventSource, normalise
from tests.unit.helpers import NS, fn
from tests.waiting import wait_for

# the event normaliser, on the events dockerd sent for a deploy, scale, kill and delete

KNOWN = {"svc1": KnownFunction("echo", NS, 1)}


def _container_event(action, **attributes):
    labels = {"com.openfaas.function": "echo", "com.docker.swarm.task.id": "task1", "name": "echo.1.task1"}
    return {"Type": "container", "Action": action, "Actor": {"ID": "c1", "Attributes": {**labels, **attributes}},
            "timeNano": 1796089196498041761}


def _node_event(**attributes):
    return {"Type": "node", "Action": "update", "Actor": {"ID": "n3", "Attributes": {"name": "node-3", **attributes}},
            "timeNano": 5}


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
    (_node_event(**{"state.old": "ready", "state.new": "down"}),
     FunctionEvent(NODE_DOWN, "1970-01-01T00:00:00.000000005Z", node="node-3")),
    (_node_event(**{"state.old": "down", "state.new": "ready"}),
     FunctionEvent(NODE_READY, "1970-01-01T00:00:00.000000005Z", node="node-3")),
    (_node_event(**{"availability.old": "active", "availability.new": "drain"}), None),
    (_node_event(**{"state.old": "ready", "state.new": "ready"}), None),
])
def test_docker_events_normalised(event, expected):
    assert normalise(event, KNOWN, NS) == expected


_UPDATE = {"Type": "service", "Action": "update", "timeNano": 5,
           "Actor": {"ID": "svc1", "Attributes": {"name": "echo", "updatestate.new": "updating"}}}
_GIVEN_UP = KnownFunction("echo", NS, 2, Rollout("rolled_back", "no new replica became ready"))


@pytest.mark.parametrize("before, after, attributes, expected", [
    # The gateway's rollback label appears: told once, with the reason.
    (KnownFunction("echo", NS, 2, Rollout("updating")), _GIVEN_UP, {},
     FunctionEvent(UPDATE_ROLLED_BACK, "1970-01-01T00:00:00.000000005Z", "echo", NS,
                   message="no new replica became ready")),
    (_GIVEN_UP, _GIVEN_UP, {"updatestate.new": "completed"},
     FunctionEvent(FUNCTION_UPDATED, "1970-01-01T00:00:00.000000005Z", "echo", NS, rollout="completed")),
    # Swarm's own rollback (a new replica exited).
    (KnownFunction("echo", NS, 2), KnownFunction("echo", NS, 2, Rollout("rollback_started", "task exited")),
     {"updatestate.new": "rollback_started"},
     FunctionEvent(UPDATE_ROLLED_BACK, "1970-01-01T00:00:00.000000005Z", "echo", NS, message="task exited")),
])
def test_an_update_given_up_is_told_once_with_why(before, after, attributes, expected):
    event = {**_UPDATE, "Actor": {"ID": "svc1", "Attributes": {"name": "echo", **attributes}}}
    assert normalise(event, {"svc1": after}, NS, before) == expected


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
        reader = Reader(SwarmEventSource(runtime.events.lookup, None, **source).open(request))
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


def test_streams_of_one_source_share_what_they_know_until_one_learns_more(runtime, engine):
    # One copy of every function for all the streams, not one each; what a stream learns or
    # forgets is its own.
    runtime.functions.deploy(fn("kept"))
    lookup = runtime.events.lookup
    # Once the services list is kept (Docker's events followed), not listed again per stream.
    wait_for(lambda: lookup.function_services() is lookup.function_services(), timeout=5, what="the list kept")
    source = SwarmEventSource(lookup)
    first, second = (source.open(EventRequest(NS)) for _ in range(2))
    assert first._known is second._known and len(first._known) == 1
    readers = [Reader(first), Reader(second)]
    try:
        engine.wait_for_watchers(2)
        runtime.functions.deploy(fn())
        runtime.functions.delete("echo")
        runtime.functions.delete("kept")
        for reader in readers:
            assert [(reader.next(kind).name) for kind in (FUNCTION_DEPLOYED, FUNCTION_DELETED, FUNCTION_DELETED)] == [
                "echo", "echo", "kept"]
    finally:
        for reader in readers:
            reader.close()


def test_a_rollback_seen_on_the_stream(runtime, engine, events):
    reader = events()
    runtime.functions.deploy(FunctionDeployment("echo", "img:1", env_vars={"v": "1"}))
    runtime.functions.update(FunctionDeployment("echo", "img:1", env_vars={"v": "2"}))
    assert reader.next(FUNCTION_UPDATED).rollout == "completed"
    (function,) = runtime.functions.function_endpoints()
    runtime.functions.roll_back("echo", NS, function.version, "no new replica became ready")
    assert reader.next(UPDATE_ROLLED_BACK).message == "no new replica became ready"
    runtime.functions.update(FunctionDeployment("echo", "img:1", env_vars={"v": "3"}))
    seen = []
    while (event := reader.next()).type != FUNCTION_UPDATED:
        seen.append(event.type)
    assert UPDATE_ROLLED_BACK not in seen  # told once: not again at the next change


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
