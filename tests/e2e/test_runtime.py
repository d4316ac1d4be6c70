"""The runtime view on the stack, through nginx: usage, instances and the event stream."""

from __future__ import annotations

import http.client
import json
import queue
import threading
from urllib.parse import urlsplit

from app.domain.models import LABEL_SCALE_MIN
from tests.e2e.stack import auth, invoke
from tests.gateway import call
from tests.swarm import CLASSIC_IMAGE, name
from tests.waiting import wait_for

# Busy for a moment per call, so the replicas' CPU counters grow between two samples.
BUSY = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done"


class Events:
    """GET /system/events through nginx, read in a thread; ``next`` waits for one with a bound."""

    def __init__(self, stack, query: str):
        parts = urlsplit(stack.url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=90)
        self.connection.request("GET", f"/system/events?{query}", headers=auth(stack))
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("Content-Type").startswith("text/event-stream")
        # The first comment arrives at once: nginx holds nothing back.
        assert self.response.readline() == b": stream open\n"
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.response:
                if line.startswith(b"data: "):
                    self.events.put(json.loads(line[len(b"data: "):]))
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # closed by the test
        self.events.put(None)

    def next(self, kind: str, timeout: float = 60, **fields) -> dict:
        """The next event of ``kind`` whose fields include ``fields``, skipping others."""
        while True:
            event = self.events.get(timeout=timeout)
            assert event is not None, f"the stream ended before {kind} {fields}"
            if event["type"] == kind and all(event.get(key) == value for key, value in fields.items()):
                return event

    def close(self) -> None:
        self.connection.close()


def test_usage_instances_and_the_events_of_a_deploy_a_kill_a_scale_and_a_delete(stack, docker_api):
    fn = name("runtime")
    deployed = Events(stack, f"function={fn}")
    try:
        body = {"service": fn, "image": CLASSIC_IMAGE, "envVars": {"handler": BUSY}, "labels": {LABEL_SCALE_MIN: "2"}}
        status, text, _ = call(f"{stack.url}/system/functions", "POST", body, auth(stack))
        assert status == 202, text
        event = deployed.next("function.deployed", name=fn)
        assert (event["namespace"], event["replicas"]) == ("openfaas-fn", 2)
        deployed.next("replica.started", name=fn)
    finally:
        deployed.close()

    def running_instances():
        status, text, _ = call(f"{stack.url}/system/function/{fn}/instances", headers=auth(stack))
        assert status == 200, text
        instances = json.loads(text)
        return instances if [i["state"] for i in instances] == ["running", "running"] else None

    instances = wait_for(running_instances, timeout=90, what=f"two running instances of {fn}")
    assert all(i["memoryBytes"] > 0 and i["node"] and i["startedAt"] for i in instances)
    assert {i["slot"] for i in instances} == {1, 2}

    def usage():
        invoke(stack, f"/function/{fn}", "POST", b"x")
        status, text, _ = call(f"{stack.url}/system/function/{fn}?usage=1", headers=auth(stack))
        assert status == 200, text
        found = json.loads(text).get("usage")
        return found if found and found["cpu"] > 0 and found["totalMemoryBytes"] > 0 else None

    # Asking starts the sampler of the worker that answers; a rate needs two of its samples.
    wait_for(usage, timeout=60, interval=0.2, what=f"usage of {fn} above zero")

    events = Events(stack, f"function={fn}")
    try:
        victim = instances[0]["id"]
        (container,) = docker_api.containers(filters={"label": f"com.docker.swarm.task.id={victim}"})
        docker_api.kill(container["Id"])
        died = events.next("replica.died", instance=victim)
        assert died["exitCode"] == 137 and died["name"] == fn

        assert call(f"{stack.url}/system/scale-function/{fn}", "POST", {"replicas": 3}, auth(stack))[0] == 202
        scaled = events.next("function.scaled", name=fn)
        assert (scaled["replicas"], scaled["previousReplicas"]) == (3, 2)

        assert call(f"{stack.url}/system/functions", "DELETE", {"functionName": fn}, auth(stack))[0] == 200
        events.next("function.deleted", name=fn)
    finally:
        events.close()
