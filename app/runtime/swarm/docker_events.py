"""Function events from Swarm: the ``EventSource`` implementation over Docker's ``/events``.

Docker's event stream, as dockerd 20.10 sends it on a manager: service ``create``, ``update``
and ``remove`` with only the service's name in their attributes (an update that changed the
replicas adds ``replicas.old``/``.new``, a rolling update ``updatestate.new``); container events
of this node only, carrying the container's labels (so ``com.openfaas.function`` and
``com.openfaas.namespace``) and ``com.docker.swarm.task.id``; ``die`` with ``exitCode``;
``health_status: healthy|unhealthy``; ``oom``. Service events carry no labels, so the stream
keeps the functions it knows by service ID: listed when it opens, learnt by inspecting a service
when it is created, read again when its spec or rollout changes, forgotten when it is removed.
An update given up (the gateway's rollback label appears, or Swarm starts its own rollback) is
told once, as ``update.rolled_back`` with the reason.

Node ``update`` events with ``state.old``/``state.new`` become ``node.down`` and ``node.ready``.
On a cluster (node agents), container events come from every node's agent
(``app.runtime.swarm.node_events``) instead, merged into the same stream.

``normalise`` turns one Docker event into a FunctionEvent (pure). The stream reconnects when the
connection breaks without being closed, waiting longer each time up to a few seconds, and asks
Docker for what it missed since the last event it passed on.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from app.domain.models import (
    FUNCTION_DELETED,
    FUNCTION_DEPLOYED,
    FUNCTION_SCALED,
    FUNCTION_UPDATED,
    LABEL_FUNCTION,
    REPLICA_DIED,
    REPLICA_HEALTHY,
    REPLICA_OOM,
    REPLICA_STARTED,
    REPLICA_UNHEALTHY,
    NODE_DOWN,
    NODE_READY,
    STREAM_DISCONNECTED,
    STREAM_RECONNECTED,
    UPDATE_ROLLED_BACK,
    EventRequest,
    FunctionEvent,
    Rollout,
)
from app.domain.timestamps import format_rfc3339_nano, now_rfc3339_nano
from app.errors import GatewayError, NotFound
from app.runtime.swarm import naming, readings, specs
from app.runtime.swarm.agents import Agents
from app.runtime.swarm.lookup import Lookup
from app.runtime.swarm.node_events import NodeEventFollower
from app.runtime.swarm.streams import CuttableStream

log = logging.getLogger(__name__)
_READ_SIZE = 64 * 1024
# Only what can become a FunctionEvent; the rest (exec probes every second) is not sent at all.
DOCKER_FILTERS = {
    "type": ["service", "node", "container"],
    "event": ["create", "update", "remove", "start", "die", "oom", "health_status"],
}
# With node agents, the manager's own container events would come twice: the agents send them.
CLUSTER_FILTERS = {**DOCKER_FILTERS, "type": ["service", "node"]}
_NODE_STATES = {"down": NODE_DOWN, "ready": NODE_READY}
# Put on a merged stream's queue when the manager's stream has ended.
_ENDED = object()
_CONTAINER_TYPES = {
    "start": REPLICA_STARTED,
    "die": REPLICA_DIED,
    "oom": REPLICA_OOM,
    "health_status: healthy": REPLICA_HEALTHY,
    "health_status: unhealthy": REPLICA_UNHEALTHY,
}
_TASK_LABEL = "com.docker.swarm.task.id"


@dataclass(frozen=True)
class KnownFunction:
    """A function's service as the stream knows it: service events only name the service."""

    name: str
    namespace: str
    replicas: int
    rollout: Rollout | None = None


def known_function(service: dict, default_namespace: str) -> KnownFunction:
    """What the stream keeps of a function's service."""
    name, namespace = naming.function_identity(service, default_namespace)
    return KnownFunction(name, namespace, specs.current_replicas(service), specs.rollout(service))


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def event_time(event: dict) -> str:
    nanos = int(event.get("timeNano") or int(event.get("time") or 0) * 10**9)
    return format_rfc3339_nano(nanos // 10**9, nanos % 10**9)


def normalise(
    event: dict, known: dict[str, KnownFunction], default_namespace: str, before: KnownFunction | None = None
) -> FunctionEvent | None:
    """The FunctionEvent one Docker event means, or None when it is about nothing of ours or
    nothing the API reports. ``known`` must already hold the service of a service event, as it
    is after the event; ``before`` is what was known of it before (an update that rolled back
    is told once)."""
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    action = event.get("Action") or ""
    at = event_time(event)
    if event.get("Type") == "node":
        # A node's state changes (ready -> down, down -> ready); other node updates are not news.
        kind = _NODE_STATES.get(attributes.get("state.new", ""))
        if kind is None or attributes.get("state.old") == attributes.get("state.new"):
            return None
        return FunctionEvent(kind, time=at, node=attributes.get("name") or actor.get("ID"))
    if event.get("Type") == "service":
        function = known.get(actor.get("ID", ""))
        if function is None:
            return None
        common = {"time": at, "name": function.name, "namespace": function.namespace}
        if action == "create":
            return FunctionEvent(FUNCTION_DEPLOYED, replicas=function.replicas, **common)
        if action == "remove":
            return FunctionEvent(FUNCTION_DELETED, **common)
        if action != "update":
            return None
        new = _number(attributes.get("replicas.new"))
        if new is not None:
            return FunctionEvent(
                FUNCTION_SCALED, replicas=new, previous_replicas=_number(attributes.get("replicas.old")), **common
            )
        rollout = function.rollout
        if rollout is not None and rollout.state == "rolled_back" and (before is None or before.rollout != rollout):
            return FunctionEvent(UPDATE_ROLLED_BACK, message=rollout.message, **common)
        if attributes.get("updatestate.new") == "rollback_started":
            message = rollout.message if rollout is not None and rollout.message else "Swarm rolled the update back."
            return FunctionEvent(UPDATE_ROLLED_BACK, message=message, **common)
        return FunctionEvent(FUNCTION_UPDATED, rollout=attributes.get("updatestate.new"), **common)
    kind = _CONTAINER_TYPES.get(action)
    name = attributes.get(LABEL_FUNCTION)
    if event.get("Type") != "container" or kind is None or not name or not attributes.get(_TASK_LABEL):
        return None
    return FunctionEvent(
        kind,
        time=at,
        name=name,
        namespace=readings.namespace_of(attributes, default_namespace),
        instance=attributes[_TASK_LABEL],
        exit_code=_number(attributes.get("exitCode")) if kind == REPLICA_DIED else None,
    )


def wanted(event: FunctionEvent, request: EventRequest) -> bool:
    """Whether a client asking ``request`` gets ``event``; the stream's own events go to all."""
    if event.name is None:
        return True
    return event.namespace == request.namespace and request.function in (None, event.name)


class SwarmEventSource:
    """Opens event streams of the functions ``lookup`` finds; with ``agents`` (a cluster), their
    containers' events come from every node's agent instead of the manager's own node."""

    def __init__(
        self, lookup: Lookup, agents: Agents | None = None, retry_wait: float = 0.5, max_retry_wait: float = 5.0
    ):
        self.lookup = lookup
        self.agents = agents
        self.retry_wait = retry_wait
        self.max_retry_wait = max_retry_wait
        # Every function by service ID, and the services list it was read from (the cache's, the
        # same object until a service changes): one for all the streams opened meanwhile. With a
        # thousand functions, each of a hundred streams kept its own: 90 MiB more for the gateway.
        self._known: tuple[list[dict], dict[str, KnownFunction]] | None = None

    def known_functions(self) -> dict[str, KnownFunction]:
        """Every function that exists now, by service ID; shared, so a caller copies it before
        changing it. Raises BackendUnavailable (503)."""
        services = self.lookup.function_services()
        known = self._known
        if known is None or known[0] is not services:
            default = self.lookup.client.default_namespace
            known = (services, {service["ID"]: known_function(service, default) for service in services})
            self._known = known
        return known[1]

    def open(self, request: EventRequest) -> "SwarmEventStream":
        """Learn the functions that exist now, then return a stream not yet started.

        Raises BackendUnavailable (503) when Docker cannot be reached.
        """
        stream = SwarmEventStream(self, request)
        stream.learn_all()
        return stream


class SwarmEventStream:
    """Iterate to receive batches of FunctionEvents; ``close`` ends the stream from anywhere."""

    def __init__(self, source: SwarmEventSource, request: EventRequest):
        self.source = source
        self.lookup = source.lookup
        self.request = request
        self._stream = CuttableStream(source.lookup.client)
        self._closing = threading.Event()
        self._known: dict[str, KnownFunction] = {}
        self._shared = False  # whether _known is the source's, copied before a change
        self._last = 0  # timeNano of the newest event passed on, where a reconnect resumes

    def learn_all(self) -> None:
        """Know every function that exists now. Raises BackendUnavailable (503)."""
        self._known, self._shared = self.source.known_functions(), True

    def _own_known(self) -> dict[str, KnownFunction]:
        if self._shared:
            self._known, self._shared = dict(self._known), False
        return self._known

    def _learn(self, service_id: str) -> None:
        try:
            svc = self.lookup.owned_service(service_id)
        except NotFound:
            return  # not ours, or removed already: nothing of ours to report
        self._own_known()[service_id] = known_function(svc, self.lookup.client.default_namespace)

    def __iter__(self) -> Iterator[list[FunctionEvent]]:
        if self.source.agents is None:
            yield from self._manager()
            return
        # The manager's stream and every node's, each read in a thread of its own, merged here.
        batches: queue.Queue = queue.Queue()
        follower = NodeEventFollower(self.source.agents, lambda raw: batches.put(self._take_container(raw)))
        threading.Thread(target=self._pump, args=(batches,), daemon=True).start()
        follower.start()
        try:
            while not self._closing.is_set():
                try:
                    batch = batches.get(timeout=0.5)
                except queue.Empty:
                    continue
                if isinstance(batch, BaseException):
                    raise batch
                if batch is _ENDED:
                    return
                if batch:
                    yield batch
        finally:
            follower.close()

    def _pump(self, batches: queue.Queue) -> None:
        try:
            for batch in self._manager():
                batches.put(batch)
            batches.put(_ENDED)
        except GatewayError as exc:
            batches.put(exc)

    def _take_container(self, raw: dict) -> list[FunctionEvent]:
        event = normalise(raw, {}, self.lookup.client.default_namespace)
        return [event] if event is not None and wanted(event, self.request) else []

    def _manager(self) -> Iterator[list[FunctionEvent]]:
        wait = self.source.retry_wait
        reconnected = False  # once connected, a failure is a reconnect to wait for, not a refusal
        while not self._closing.is_set():
            try:
                response = self._connect()
            except GatewayError as exc:
                if not reconnected:
                    raise
                log.info("event stream: Docker still away: %s", exc.message)
                self._closing.wait(wait)
                wait = min(wait * 2, self.source.max_retry_wait)
                continue
            if response is None:
                return
            if reconnected:
                yield [FunctionEvent(STREAM_RECONNECTED, time=now_rfc3339_nano(), message="Docker answers again.")]
            reconnected, wait = True, self.source.retry_wait
            yield from self._read(response)
            if self._closing.is_set():
                return
            yield [FunctionEvent(STREAM_DISCONNECTED, time=now_rfc3339_nano(), message="Docker went away; reconnecting.")]

    def _connect(self):
        params = {"filters": json.dumps(DOCKER_FILTERS if self.source.agents is None else CLUSTER_FILTERS)}
        if self._last:
            # Resume where the last event left off (Docker includes events at exactly that
            # time; _take drops those), knowing the functions deployed meanwhile.
            params["since"] = f"{self._last // 10**9}.{self._last % 10**9:09d}"
            self.learn_all()
        else:
            # Docker runs on this machine's clock: events after this request come after this.
            self._last = time.time_ns()
        return self._stream.start("/events", params, "stream its events")

    def _read(self, response) -> Iterator[list[FunctionEvent]]:
        pending = b""
        try:
            for chunk in response.raw.stream(_READ_SIZE, decode_content=False):
                *lines, pending = (pending + chunk).split(b"\n")
                batch = [event for line in lines if line.strip() for event in self._take(json.loads(line))]
                if batch:
                    yield batch
        except (OSError, ValueError, AttributeError, Urllib3Error, requests.RequestException) as exc:
            if not self._stream.closed:
                log.warning("event stream broke: %s", exc)
        finally:
            self._stream.release(response)

    def _take(self, raw: dict) -> list[FunctionEvent]:
        nanos = int(raw.get("timeNano") or 0)
        if nanos and nanos <= self._last:
            return []  # sent before the reconnect
        self._last = max(self._last, nanos)
        actor = raw.get("Actor") or {}
        actor_id = actor.get("ID", "")
        before = self._known.get(actor_id)
        # A spec or rollout change is read again (rare; a scale names its replicas itself).
        changed = raw.get("Action") == "update" and "replicas.new" not in (actor.get("Attributes") or {})
        if raw.get("Type") == "service" and raw.get("Action") in ("create", "update") and (before is None or changed):
            self._learn(actor_id)
        event = normalise(raw, self._known, self.lookup.client.default_namespace, before)
        if raw.get("Type") == "service" and raw.get("Action") == "remove" and actor_id in self._known:
            self._own_known().pop(actor_id)
        return [event] if event is not None and wanted(event, self.request) else []

    def close(self) -> None:
        """End the stream now; safe to call repeatedly and from another thread or greenlet."""
        self._closing.set()
        self._stream.close()
