"""An in-memory Docker Engine in Swarm mode, for unit tests of the Swarm adapter without Docker.

``FakeDocker`` keeps services, tasks, secrets and networks as Engine API JSON. ``client()`` is a
real ``docker.APIClient`` whose transport is replaced (as docker-py's own unit tests fake the
API): the SDK builds the URLs and turns error answers into ``APIError`` itself. Every answer is
written as HTTP/1.1 onto a socket pair and parsed back by ``http.client`` and urllib3, so log
streams arrive chunk by chunk, have a file descriptor, and end when that socket is shut down.

What it answers was checked against dockerd 20.10 (API 1.41) in Swarm mode:

- Errors are JSON ``{"message": ...}``: an unknown object is 404 ``service x not found``; a taken
  name is 409 (``rpc error: code = AlreadyExists desc = ...``); an update with a stale
  ``version`` is 500 ``rpc error: code = Unknown desc = update out of sequence``; removing a
  secret a service mounts is 400; a spec naming an unknown network is 500, an unknown secret 400.
- Every write moves one cluster-wide index; a service's ``Version.Index`` is its value at the
  service's last write, and an update must name exactly that version.
- A stored spec gains the daemon's defaults (``Runtime``, ``ForceUpdate``, ``Isolation``) and
  loses empty values (Go's ``omitempty``); tasks carry the template without ``Runtime``.
- Networks: a name taken is 409 ``network with name x already exists``; removing one a service
  uses is 400 (``FailedPrecondition``); connecting a container twice is 409, to an unknown
  network 500, disconnecting one not connected 500. Configs: only their labels can be updated
  (400 otherwise), with the same version rule as services. Service names are at most 63
  characters of letters, digits, "-" and "_".
- Tasks are scheduled at once: after each write the service has one task per replica, in state
  ``task_state``; a task of an older spec or a surplus slot is shut down, and stays listed. A
  running task has a container on this node whose CPU use (``cpu_usage``) its stats report.
  ``kill`` ends a container as ``docker kill`` does: the task fails (``Err`` "task: non-zero exit
  (137)") and a new task takes its slot at once (Swarm waits its restart delay first).
- Stats (one-shot) of a running container carry ``read``, CPU, memory with the cgroup v1 ``stats``
  and ``networks``; of a stopped one, zeros with ``read`` at Go's zero time. Inspect has ``State``
  with ``Health`` when ``health`` set one. ``/nodes`` lists this node.
- ``/events`` streams one JSON object per chunk with ``timeNano`` on this machine's clock: service
  ``create``/``update`` (``replicas.old``/``.new`` when they changed)/``remove`` naming only the
  service; container ``start``/``die`` (``exitCode``)/``oom``/``health_status: x`` with the
  container's labels and ``com.docker.swarm.task.id``; filters ``type``, ``event`` (matching the
  action or its part before ``:``), ``since`` and ``until``.
- Logs are multiplexed frames, one HTTP chunk each, ``<time> <details> <text>``. A line longer
  than 16 KiB is stored in pieces with the same time, only the last ending in a newline; ``tail``
  counts those pieces and applies to each task separately; a service's tasks are sent one after
  the other, not interleaved by time; ``since`` includes lines at exactly that time.

Faults: ``inject`` makes chosen requests raise (``refused()``, ``timed_out()``), answer an error,
or first run an action (another client's update); ``down`` refuses every connection.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import itertools
import json
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import docker
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError

API_VERSION = "1.41"
# Docker's log buffer: a longer line is stored and sent as several pieces.
LOG_PIECE = 16 * 1024
OUT_OF_SEQUENCE = "rpc error: code = Unknown desc = update out of sequence"
# 2026-01-01T00:00:00Z: the fake's clock starts here and moves 1 ms per logged line.
_EPOCH_NS = 1_767_225_600 * 10**9
# swarmkit's rule for service names: "_" is allowed (stacks use it), "." is not.
_SERVICE_NAME = re.compile(r"[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9]+)*")


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens on Docker's socket."""
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionRefusedError(111, "Connection refused"))
    )


def timed_out() -> requests.exceptions.ReadTimeout:
    """What requests raises when Docker accepts the request but does not answer in time."""
    return requests.exceptions.ReadTimeout("UnixHTTPConnectionPool(host='localhost', port=None): Read timed out.")


class DockerError(Exception):
    """An error answer: the status and Docker's message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Fault:
    method: str
    path: re.Pattern
    fault: object  # an exception to raise, a (status, message) answer, or an action to run first
    times: int | None


@dataclass
class _LogPiece:
    at: int  # nanoseconds since the epoch
    stream: int  # 1 stdout, 2 stderr
    data: bytes  # without the newline
    last: bool  # the last piece of its line: sent with a newline


@dataclass
class _Follower:
    """An open follow stream: new lines of the tasks it covers are written to it as they come."""

    covers: Callable[[dict], bool]
    params: dict
    out: "_Pipe | None" = None  # set once the answer's head is on its way
    pending: list[bytes] = field(default_factory=list)  # lines logged before that
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Pipe:
    """The daemon's end of one connection: a writer thread sends what is queued, in order."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.closed = False
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def send_all(sock: socket.socket, data: bytes) -> bool:
        """Send a whole small answer at once, without a thread; False when it may not fit."""
        # Well under the socket's buffer (over 200 KiB on Linux), so sendall cannot block on a
        # reader that has not started; most answers are this small, and a thread costs more.
        if len(data) > 64 * 1024:
            return False
        sock.sendall(data)
        sock.close()
        return True

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.queue.put(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put(None)

    def _run(self) -> None:
        try:
            while (data := self.queue.get()) is not None:
                self.sock.sendall(data)
        except OSError:
            pass  # the client went away (or shut the connection down): like the daemon, stop writing
        finally:
            self.closed = True
            self.sock.close()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# Go maps, not structs: their entries are kept whatever the value.
_MAPS = {"Labels", "Options", "DriverOpts", "Sysctls"}


def _omit_empty(value):
    """The daemon's JSON drops struct fields that are empty lists, strings, false or null (``omitempty``)."""
    if isinstance(value, dict):
        # Not "in (None, False, ...)": 0 == False, and a replica count of 0 is kept (a pointer in Go).
        return {
            k: v if k in _MAPS else _omit_empty(v)
            for k, v in value.items()
            if not (v is None or v is False or v == "" or v == [])
        }
    if isinstance(value, list):
        return [_omit_empty(v) for v in value]
    return value


class FakeDocker:
    """The Engine API of one Swarm manager node, in memory."""

    def __init__(self):
        self._lock = threading.RLock()
        self._index = itertools.count(101)
        self._serial = itertools.count(1)
        self._clock = _EPOCH_NS
        self.services: dict[str, dict] = {}  # by ID, as the daemon stores them
        self.tasks: dict[str, dict] = {}
        self.secrets: dict[str, dict] = {}
        self.secret_data: dict[str, bytes] = {}  # by secret ID
        self.networks: dict[str, dict] = {}
        self.configs: dict[str, dict] = {}
        # Containers on this node that are not tasks (the gateway, nginx), by ID; /containers/json
        # lists these and the tasks' containers.
        self.plain_containers: dict[str, dict] = {}
        # CPU nanoseconds used by the containers of running tasks on this node, by container ID.
        self.cpu_usage: dict[str, int] = {}
        self._logs: dict[str, list[_LogPiece]] = {}  # by task ID
        self._followers: list[_Follower] = []
        self._watchers: list[_Follower] = []  # open /events streams
        self.events: list[dict] = []  # every event so far, for since
        self.containers: dict[str, dict] = {}  # by ID: {"task", "labels", "State", "memory", "rx", "tx"}
        self._follower_added = threading.Condition(self._lock)
        self._faults: list[_Fault] = []
        self.swarm = {"LocalNodeState": "active", "ControlAvailable": True}
        self.task_state = "running"
        # How many more network lists a removed network still appears in, as on a cluster, where
        # a manager answers the removal before the others have forgotten the network.
        self.network_linger = 0
        self._lingering: dict[str, list] = {}
        self.down = False
        # Every request answered or refused: (method, path without the version, query, headers).
        self.requests: list[tuple[str, str, dict, dict]] = []
        self.node_id = self._new_id()
        for name, driver, scope in [("bridge", "bridge", "local"), ("host", "host", "local"),
                                    ("none", "null", "local"), ("ingress", "overlay", "swarm")]:
            self._add_network(name, driver, scope, {}, attachable=False)

    # the client

    def client(self, timeout: float = 30) -> docker.APIClient:
        """A real APIClient talking to this engine; nothing reaches a socket of the machine."""
        # A socket path that cannot exist: should the fake transport ever be bypassed, the client
        # fails instead of reaching the machine's daemon.
        api = docker.APIClient(base_url="unix:///nonexistent/fake-docker.sock", version=API_VERSION, timeout=timeout)
        api.mount("http+docker://", _Transport(self))
        # Proxy variables never apply to Docker's socket; reading them is most of a request's cost.
        api.trust_env = False
        return api

    def close(self) -> None:
        """End every open follow stream, as the daemon does when it stops."""
        with self._lock:
            followers, self._followers = self._followers + self._watchers, []
            self._watchers = []
        for follower in followers:
            with follower.lock:
                if follower.out is not None:
                    follower.out.write(b"0\r\n\r\n")
                    follower.out.close()

    # faults

    def inject(self, method: str, path: str, fault, times: int | None = 1) -> None:
        """Make requests matching ``method`` and the ``path`` pattern (without ``/v1.41``) fail.

        ``fault`` is an exception to raise (``refused()``, ``timed_out()``), a ``(status,
        message)`` error answer, or a callable run just before the request is answered (another
        client acting in between). ``times`` None means every matching request from now on.
        """
        with self._lock:
            self._faults.append(_Fault(method, re.compile(path), fault, times))

    def touch(self, name: str) -> None:
        """Another client updates service ``name`` with its own spec: only its version moves."""
        with self._lock:
            service = self._service(name)
            service["Version"] = {"Index": next(self._index)}

    def count(self, method: str, path: str) -> int:
        """How many requests matched ``method`` and the ``path`` pattern."""
        pattern = re.compile(path)
        return sum(1 for m, p, _, _ in self.requests if m == method and pattern.fullmatch(p))

    # state, for tests to arrange and inspect

    def service(self, name: str) -> dict:
        """The stored service named ``name`` (changing it changes the daemon's state)."""
        return self._service(name)

    def create_service(self, spec: dict) -> dict:
        """A service created as another client would create it."""
        return self._create_service(_Request("POST", "/services/create", {}, {}, spec), {})[1]

    def create_secret(self, name: str, data: bytes, labels: dict | None = None) -> str:
        body = {"Name": name, "Data": base64.b64encode(data).decode(), "Labels": labels or {}}
        return self._create_secret(_Request("POST", "/secrets/create", {}, {}, body), {})[1]["ID"]

    def add_container(self, name: str, labels: dict[str, str]) -> str:
        """A running container on this node that is no task (as docker-compose starts one)."""
        with self._lock:
            container_id = hashlib.sha256(f"container {name}".encode()).hexdigest()
            bridge = self._network("bridge")
            self.plain_containers[container_id] = {
                "Id": container_id, "Names": [f"/{name}"], "Image": "img", "Labels": dict(labels), "State": "running",
                "NetworkSettings": {"Networks": {"bridge": {"NetworkID": bridge["Id"], "IPAddress": "172.17.0.9"}}},
            }
            return container_id

    def secret_value(self, name: str) -> bytes:
        """The data of the secret named ``name``."""
        return self.secret_data[self._secret(name)["ID"]]

    def running_tasks(self, name: str) -> list[dict]:
        """The tasks of service ``name`` meant to run, by slot."""
        sid = self._service(name)["ID"]
        tasks = [t for t in self.tasks.values() if t["ServiceID"] == sid and t["DesiredState"] == "running"]
        return sorted(tasks, key=lambda t: t["Slot"])

    def log(self, task_id: str, text: str | bytes, *, stream: int = 1, at: int | None = None) -> int:
        """Task ``task_id`` writes one line; returns its time (ns), by default 1 ms after the last.

        Open follow streams that cover the task receive it at once.
        """
        data = text.encode() if isinstance(text, str) else text
        with self._lock:
            if at is None:
                self._clock += 1_000_000
                at = self._clock
            cuts = range(0, max(len(data), 1), LOG_PIECE)
            pieces = [_LogPiece(at, stream, data[c : c + LOG_PIECE], c + LOG_PIECE >= len(data)) for c in cuts]
            self._logs.setdefault(task_id, []).extend(pieces)
            task = self.tasks[task_id]
            followers = [f for f in self._followers if f.covers(task)]
        for follower in followers:
            frames = self._frames(task, pieces, follower.params)
            with follower.lock:
                if follower.out is None:
                    follower.pending += frames
                else:
                    follower.out.write(b"".join(frames))
        return at

    def kill(self, task_id: str, exit_code: int = 137) -> str:
        """``docker kill`` of a task's container: it dies, the task fails and a new task takes
        its slot. Returns the new task's ID."""
        with self._lock:
            task = self.tasks[task_id]
            self._stop_container(task, exit_code)
            task["DesiredState"] = "shutdown"
            task["Status"] = {**task["Status"], "State": "failed", "Err": f"task: non-zero exit ({exit_code})"}
            task["Status"]["ContainerStatus"] = {**task["Status"]["ContainerStatus"], "ExitCode": exit_code, "PID": 0}
            return self._start_task(self.services[task["ServiceID"]], task["Slot"], task["Spec"])

    def health(self, task_id: str, status: str, output: str = "", failing: int = 0) -> None:
        """The task's container's health check reports ``status`` (starting, healthy, unhealthy)."""
        with self._lock:
            task = self.tasks[task_id]
            container = self.containers[task["Status"]["ContainerStatus"]["ContainerID"]]
            container["State"]["Health"] = {"Status": status, "FailingStreak": failing,
                                            "Log": [{"ExitCode": int(failing > 0), "Output": output}]}
            self._event("container", f"health_status: {status}", container["id"], self._container_attributes(container))

    def oom(self, task_id: str) -> None:
        """The task's container hits its memory limit: ``oom``, then it dies with 137."""
        with self._lock:
            container = self.containers[self.tasks[task_id]["Status"]["ContainerStatus"]["ContainerID"]]
            self._event("container", "oom", container["id"], self._container_attributes(container))
        self.kill(task_id, 137)

    def wait_for_watchers(self, count: int, timeout: float = 5) -> None:
        """Return once ``count`` /events streams are open; AssertionError after ``timeout``."""
        with self._follower_added:
            if not self._follower_added.wait_for(lambda: len(self._watchers) >= count, timeout):
                raise AssertionError(f"{len(self._watchers)} event streams open, expected {count}")

    def wait_for_followers(self, count: int, timeout: float = 5) -> None:
        """Return once ``count`` follow streams are open; AssertionError after ``timeout``."""
        with self._follower_added:
            if not self._follower_added.wait_for(lambda: len(self._followers) >= count, timeout):
                raise AssertionError(f"{len(self._followers)} follow streams open, expected {count}")

    # dispatch

    def answer(self, request: requests.PreparedRequest) -> tuple[int, object]:
        """Status and body (JSON-able, or a _LogAnswer) for one request; may raise a fault."""
        url = urlsplit(request.url)
        path = re.sub(r"^/v\d+\.\d+", "", url.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        body = json.loads(request.body) if request.body else None
        with self._lock:
            self.requests.append((request.method, path, query, dict(request.headers)))
            if self.down:
                raise refused()
            for fault in list(self._faults):
                if fault.method == request.method and fault.path.fullmatch(path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    if isinstance(fault.fault, BaseException):
                        raise fault.fault
                    if isinstance(fault.fault, tuple):
                        return fault.fault[0], {"message": fault.fault[1]}
                    fault.fault()
            for method, pattern, handler in self._routes():
                match = pattern.fullmatch(path)
                if method == request.method and match:
                    try:
                        return handler(_Request(request.method, path, query, request.headers, body), match.groupdict())
                    except DockerError as exc:
                        return exc.status, {"message": exc.message}
            return 404, {"message": "page not found"}

    def _routes(self):
        ref = r"(?P<ref>[^/]+)"
        return [
            ("GET", re.compile(r"/_ping"), lambda r, g: (200, "OK")),
            ("GET", re.compile(r"/version"), lambda r, g: (200, {"Version": "20.10.24", "ApiVersion": API_VERSION})),
            ("GET", re.compile(r"/info"),
             lambda r, g: (200, {"ID": self.node_id, "Swarm": {"NodeID": self.node_id, **self.swarm}})),
            ("GET", re.compile(r"/networks"), self._list_networks),
            ("POST", re.compile(r"/networks/create"), self._create_network),
            ("DELETE", re.compile(rf"/networks/{ref}"), self._remove_network),
            ("POST", re.compile(rf"/networks/{ref}/connect"), self._connect),
            ("POST", re.compile(rf"/networks/{ref}/disconnect"), self._disconnect),
            ("GET", re.compile(r"/containers/json"), self._list_containers),
            ("GET", re.compile(r"/configs"), self._list_configs),
            ("POST", re.compile(r"/configs/create"), self._create_config),
            ("POST", re.compile(rf"/configs/{ref}/update"), self._update_config),
            ("DELETE", re.compile(rf"/configs/{ref}"), self._remove_config),
            ("GET", re.compile(r"/services"), self._list_services),
            ("POST", re.compile(r"/services/create"), self._create_service),
            ("GET", re.compile(rf"/services/{ref}"), lambda r, g: (200, self._service(g["ref"]))),
            ("POST", re.compile(rf"/services/{ref}/update"), self._update_service),
            ("DELETE", re.compile(rf"/services/{ref}"), self._remove_service),
            ("GET", re.compile(rf"/services/{ref}/logs"), self._service_logs),
            ("GET", re.compile(r"/tasks"), self._list_tasks),
            ("GET", re.compile(rf"/tasks/{ref}"), lambda r, g: (200, self._task(g["ref"]))),
            ("GET", re.compile(rf"/tasks/{ref}/logs"), self._task_logs),
            ("GET", re.compile(rf"/containers/{ref}/stats"), self._container_stats),
            ("GET", re.compile(rf"/containers/{ref}/json"), self._inspect_container),
            ("GET", re.compile(r"/nodes"), lambda r, g: (200, [{"ID": self.node_id, "Description": {"Hostname": "fake-node"}}])),
            ("GET", re.compile(r"/events"), self._events_answer),
            ("GET", re.compile(r"/secrets"), self._list_secrets),
            ("POST", re.compile(r"/secrets/create"), self._create_secret),
            ("DELETE", re.compile(rf"/secrets/{ref}"), self._remove_secret),
        ]

    # objects

    def _new_id(self) -> str:
        return hashlib.sha256(str(next(self._serial)).encode()).hexdigest()[:25]

    def _now(self) -> str:
        return _format_ns(_EPOCH_NS + next(self._serial) * 1000)

    def _find(self, objects: dict[str, dict], kind: str, ref: str, name=lambda o: o["Spec"]["Name"]) -> dict:
        """By full ID, by name, then by unique ID prefix, as the daemon looks objects up."""
        if ref in objects:
            return objects[ref]
        for obj in objects.values():
            if name(obj) == ref:
                return obj
        prefixed = [obj for oid, obj in objects.items() if oid.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        raise DockerError(404, f"{kind} {ref} not found")

    def _service(self, ref: str) -> dict:
        return self._find(self.services, "service", ref)

    def _task(self, ref: str) -> dict:
        return self._find(self.tasks, "task", ref, name=lambda t: None)

    def _secret(self, ref: str) -> dict:
        return self._find(self.secrets, "secret", ref)

    # networks

    def _add_network(self, name: str, driver: str, scope: str, labels: dict, attachable: bool) -> dict:
        # Each network its own /24, as the daemon's default address pool hands them out.
        subnet = f"10.0.{len(self.networks)}.0/24"
        network = {"Name": name, "Id": hashlib.sha256(name.encode()).hexdigest(), "Driver": driver, "Scope": scope,
                   "Attachable": attachable, "Ingress": name == "ingress", "Labels": labels,
                   "IPAM": {"Driver": "default", "Options": None, "Config": [{"Subnet": subnet}]}}
        self.networks[network["Id"]] = network
        return network

    def _network(self, ref: str) -> dict:
        return self._find(self.networks, "network", ref, name=lambda n: n["Name"])

    def _list_networks(self, request, groups):
        filters = _filters(request)
        lingering = [entry[0] for entry in self._lingering.values()]
        for network_id, entry in list(self._lingering.items()):
            entry[1] -= 1
            if entry[1] <= 0:
                del self._lingering[network_id]
        # The name filter matches any part of a name.
        return 200, [
            n for n in [*self.networks.values(), *lingering]
            if all(part in n["Name"] for part in filters.get("name", []))
            and _labels_match(n.get("Labels") or {}, filters.get("label", []))
        ]

    def _remove_network(self, request, groups):
        network = self._network(groups["ref"])
        for service in self.services.values():
            if any(net.get("Target") in (network["Name"], network["Id"])
                   for net in service["Spec"]["TaskTemplate"].get("Networks") or []):
                raise DockerError(400, f"rpc error: code = FailedPrecondition desc = network {network['Id']} "
                                       f"is in use by service {service['ID']}")
        if any(network["Name"] in c["NetworkSettings"]["Networks"] for c in self.plain_containers.values()):
            raise DockerError(403, f"error while removing network: network {network['Name']} id {network['Id']} "
                                   "has active endpoints")
        next(self._index)
        del self.networks[network["Id"]]
        if self.network_linger:
            self._lingering[network["Id"]] = [network, self.network_linger]
        return 204, None

    def _plain_container(self, ref: str) -> dict:
        return self._find(self.plain_containers, "container", ref, name=lambda c: c["Names"][0][1:])

    def _connect(self, request, groups):
        try:
            network = self._network(groups["ref"])
        except DockerError:
            raise DockerError(500, f"Could not attach to network {groups['ref']}: rpc error: code = NotFound "
                                   f"desc = network {groups['ref']} not found") from None
        container = self._plain_container(request.body["Container"])
        attached = container["NetworkSettings"]["Networks"]
        if network["Name"] in attached:
            raise DockerError(409, f"{container['Names'][0][1:]} is already attached to network {network['Name']}")
        attached[network["Name"]] = {"NetworkID": network["Id"], "IPAddress": f"10.0.9.{len(attached) + 1}"}
        return 200, None

    def _disconnect(self, request, groups):
        network = self._network(groups["ref"])
        container = self._plain_container(request.body["Container"])
        if container["NetworkSettings"]["Networks"].pop(network["Name"], None) is None:
            raise DockerError(500, f"container {container['Id']} is not connected to network {network['Name']}")
        return 200, None

    def _list_containers(self, request, groups):
        filters = _filters(request)
        every = request.query.get("all") in ("1", "true", "True")
        tasks = [
            {"Id": c["id"], "Labels": c["labels"], "State": c["State"]["Status"], "NetworkSettings": {"Networks": {}}}
            for c in self.containers.values() if every or c["State"]["Running"]
        ]
        return 200, [c for c in [*self.plain_containers.values(), *tasks] if _labels_match(c["Labels"], filters.get("label", []))]

    def _create_network(self, request, groups):
        body = request.body
        if any(n["Name"] == body["Name"] for n in self.networks.values()):
            raise DockerError(409, f"network with name {body['Name']} already exists")
        next(self._index)
        network = self._add_network(body["Name"], body.get("Driver", "bridge"), "swarm",
                                    body.get("Labels") or {}, bool(body.get("Attachable")))
        return 201, {"Id": network["Id"], "Warning": ""}

    # services and their tasks

    def _stored_spec(self, spec: dict) -> dict:
        template = dict(spec.get("TaskTemplate") or {})
        template["ContainerSpec"] = {**(template.get("ContainerSpec") or {}), "Isolation": "default"}
        template.setdefault("ForceUpdate", 0)
        template.setdefault("Runtime", "container")
        stored = {**spec, "TaskTemplate": template}
        stored.setdefault("Mode", {"Replicated": {"Replicas": 1}})
        return _omit_empty(json.loads(json.dumps(stored)))

    def _check_spec(self, spec: dict) -> None:
        if len(spec.get("Name") or "") > 63:
            raise DockerError(400, "rpc error: code = InvalidArgument desc = name must be 63 characters or fewer")
        if not _SERVICE_NAME.fullmatch(spec.get("Name") or ""):
            raise DockerError(400, "rpc error: code = InvalidArgument desc = name must be valid as a DNS name component")
        template = spec.get("TaskTemplate") or {}
        container = template.get("ContainerSpec") or {}
        if not container.get("Image"):
            raise DockerError(400, "rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided")
        for ref in container.get("Secrets") or []:
            if ref.get("SecretID") not in self.secrets:
                raise DockerError(400, f"rpc error: code = InvalidArgument desc = secret not found: {ref.get('SecretName')}")
        for net in template.get("Networks") or []:
            target = net.get("Target")
            if not any(target in (n["Name"], n["Id"]) for n in self.networks.values()):
                raise DockerError(500, f"network {target} not found")

    def _create_service(self, request, groups):
        spec = request.body
        self._check_spec(spec)
        if any(s["Spec"]["Name"] == spec["Name"] for s in self.services.values()):
            raise DockerError(409, "rpc error: code = AlreadyExists desc = name conflicts with an existing object: "
                                   f"service {spec['Name']} already exists")
        now = self._now()
        service = {"ID": self._new_id(), "Version": {"Index": next(self._index)}, "CreatedAt": now, "UpdatedAt": now,
                   "Spec": self._stored_spec(spec), "Endpoint": {"Spec": spec.get("EndpointSpec") or {}}}
        self.services[service["ID"]] = service
        self._event("service", "create", service["ID"], {"name": spec["Name"]})
        self._schedule(service)
        return 201, {"ID": service["ID"]}

    def _update_service(self, request, groups):
        service = self._service(groups["ref"])
        version = request.query.get("version", "")
        if not version.isdigit():
            raise DockerError(400, f"invalid service version '{version}': "
                                   f"strconv.ParseUint: parsing \"{version}\": invalid syntax")
        if int(version) != service["Version"]["Index"]:
            raise DockerError(500, OUT_OF_SEQUENCE)
        spec = request.body
        if spec.get("Name") != service["Spec"]["Name"]:
            raise DockerError(501, "rpc error: code = Unimplemented desc = renaming services is not supported")
        self._check_spec(spec)
        previous = service["Spec"]
        old = previous["Mode"].get("Replicated", {}).get("Replicas")
        # As Swarm: the spec replaced is kept; a new task template starts a rolling update (this
        # engine completes it at once).
        now = self._now()
        service.update(Version={"Index": next(self._index)}, UpdatedAt=now, Spec=self._stored_spec(spec),
                       PreviousSpec=previous)
        new = service["Spec"]["Mode"].get("Replicated", {}).get("Replicas")
        attributes = {"name": spec["Name"]}
        if old != new:
            attributes.update({"replicas.new": str(new), "replicas.old": str(old)})
        if service["Spec"]["TaskTemplate"] != previous["TaskTemplate"]:
            service["UpdateStatus"] = {"State": "completed", "StartedAt": now, "CompletedAt": now,
                                       "Message": "update completed"}
            attributes["updatestate.new"] = "completed"
        self._event("service", "update", service["ID"], attributes)
        self._schedule(service)
        return 200, {"Warnings": None}

    def _remove_service(self, request, groups):
        service = self._service(groups["ref"])
        next(self._index)
        del self.services[service["ID"]]
        self._event("service", "remove", service["ID"], {"name": service["Spec"]["Name"]})
        for task_id in [t["ID"] for t in self.tasks.values() if t["ServiceID"] == service["ID"]]:
            self._stop_container(self.tasks.pop(task_id), 0)
        return 200, None

    def _schedule(self, service: dict) -> None:
        """One task per replica built from the current template; older or surplus ones shut down."""
        template = {k: v for k, v in service["Spec"]["TaskTemplate"].items() if k != "Runtime"}
        replicas = service["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 1)
        kept = set()
        for task in self.tasks.values():
            if task["ServiceID"] != service["ID"] or task["DesiredState"] != "running":
                continue
            if task["Slot"] > replicas or task["Spec"] != template:
                task["DesiredState"] = "shutdown"
                task["Status"] = {**task["Status"], "State": "shutdown", "Message": "shutdown"}
                self._stop_container(task, 0)
            else:
                kept.add(task["Slot"])
        for slot in range(1, replicas + 1):
            if slot not in kept:
                self._start_task(service, slot, template)

    def _start_task(self, service: dict, slot: int, template: dict) -> str:
        task_id = self._new_id()
        now = self._now()
        self.tasks[task_id] = task = {
            "ID": task_id, "Version": {"Index": next(self._index)}, "CreatedAt": now, "UpdatedAt": now,
            "Labels": {}, "Spec": json.loads(json.dumps(template)), "ServiceID": service["ID"], "Slot": slot,
            "NodeID": self.node_id, "DesiredState": "running",
            "Status": {"Timestamp": now, "State": self.task_state, "Message": self.task_state},
            "NetworksAttachments": [{"Network": {"Spec": {"Name": network["Target"]}},
                                     "Addresses": [f"10.0.{len(self.tasks) // 250}.{len(self.tasks) % 250 + 2}/16"]}
                                    for network in template.get("Networks") or []],
        }
        if self.task_state == "running":
            cid = hashlib.sha256(task_id.encode()).hexdigest()
            task["Status"]["ContainerStatus"] = {"ContainerID": cid, "PID": 4242, "ExitCode": 0}
            self.cpu_usage[cid] = 0
            labels = {**(template.get("ContainerSpec") or {}).get("Labels", {}),
                      "com.docker.swarm.node.id": self.node_id, "com.docker.swarm.service.id": service["ID"],
                      "com.docker.swarm.service.name": service["Spec"]["Name"], "com.docker.swarm.task": "",
                      "com.docker.swarm.task.id": task_id,
                      "com.docker.swarm.task.name": f"{service['Spec']['Name']}.{slot}.{task_id}"}
            self.containers[cid] = container = {
                "id": cid, "task": task_id, "labels": labels, "memory": 1_941_504, "rx": 736, "tx": 0,
                "State": {"Status": "running", "Running": True, "ExitCode": 0, "Error": "", "StartedAt": now,
                          "FinishedAt": "0001-01-01T00:00:00Z"},
            }
            self._event("container", "start", cid, self._container_attributes(container))
        return task_id

    def _stop_container(self, task: dict, exit_code: int) -> None:
        container = self.containers.get(((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID"))
        if container is None or not container["State"]["Running"]:
            return
        container["State"].update(Status="exited", Running=False, ExitCode=exit_code, FinishedAt=self._now())
        self.cpu_usage.pop(container["id"], None)
        self._event("container", "die", container["id"], {**self._container_attributes(container), "exitCode": str(exit_code)})

    def _container_attributes(self, container: dict) -> dict:
        return {**container["labels"], "image": "img", "name": container["labels"]["com.docker.swarm.task.name"]}

    # events

    def _event(self, kind: str, action: str, actor: str, attributes: dict) -> None:
        """Record an event and send it to the open /events streams that want it."""
        at = max(time.time_ns(), (self.events[-1]["timeNano"] + 1) if self.events else 0)
        event = {"Type": kind, "Action": action, "Actor": {"ID": actor, "Attributes": attributes},
                 "scope": "swarm" if kind == "service" else "local", "time": at // 10**9, "timeNano": at}
        if kind == "container":
            event = {"status": action, "id": actor, "from": attributes.get("image"), **event}
        self.events.append(event)
        for watcher in self._watchers:
            if watcher.covers(event):
                with watcher.lock:
                    frame = _chunk(json.dumps(event).encode() + b"\n")
                    if watcher.out is None:
                        watcher.pending.append(frame)
                    else:
                        watcher.out.write(frame)

    def _events_answer(self, request, groups):
        filters = _filters(request)
        since = _since(request.query.get("since")) if request.query.get("since") else None
        until = _since(request.query.get("until")) if request.query.get("until") else None

        def covers(event: dict) -> bool:
            return (event["Type"] in filters.get("type", [event["Type"]])
                    and any(event["Action"] == e or event["Action"].partition(":")[0] == e
                            for e in filters.get("event", [event["Action"]])))

        backlog = [_chunk(json.dumps(e).encode() + b"\n") for e in self.events
                   if since is not None and e["timeNano"] >= since and (until is None or e["timeNano"] <= until)
                   and covers(e)]
        if until is not None:
            return 200, _LogAnswer(backlog, None)
        watcher = _Follower(covers, request.query, pending=[])
        self._watchers.append(watcher)
        self._follower_added.notify_all()
        return 200, _LogAnswer(backlog, watcher)

    def _list_services(self, request, groups):
        filters = _filters(request)
        return 200, [
            s for s in self.services.values()
            if _labels_match(s["Spec"].get("Labels") or {}, filters.get("label", []))
            # The name filter matches prefixes.
            and all(s["Spec"]["Name"].startswith(n) for n in filters.get("name", []))
            and all(s["ID"].startswith(i) for i in filters.get("id", []))
        ]

    def _list_tasks(self, request, groups):
        filters = _filters(request)
        services = {self._service(ref)["ID"] for ref in filters.get("service", [])}
        return 200, [
            t for t in self.tasks.values()
            if (not services or t["ServiceID"] in services)
            and all(t["ID"].startswith(i) for i in filters.get("id", []))
            and all(t["DesiredState"] == d for d in filters.get("desired-state", []))
        ]

    def _container(self, ref: str) -> dict:
        # Only containers of this node: a task on another node has none here.
        if ref not in self.containers:
            raise DockerError(404, f"No such container: {ref}")
        return self.containers[ref]

    def _container_stats(self, request, groups):
        container = self._container(groups["ref"])
        if groups["ref"] not in self.cpu_usage:
            # Stopped (or unmeasurable): zeros, and the time of a reading that never happened.
            return 200, {"id": groups["ref"], "read": "0001-01-01T00:00:00Z", "memory_stats": {},
                         "cpu_stats": {"cpu_usage": {"total_usage": 0}},
                         "blkio_stats": {"io_service_bytes_recursive": None}}
        return 200, {
            "id": groups["ref"], "read": self._now(),
            "cpu_stats": {"cpu_usage": {"total_usage": self.cpu_usage[groups["ref"]]}, "online_cpus": 2},
            "memory_stats": {"usage": container["memory"] + 4096,
                             "stats": {"total_inactive_file": 4096, "inactive_file": 4096}, "limit": 25276059648},
            "networks": {"eth0": {"rx_bytes": container["rx"], "tx_bytes": container["tx"]}},
            "blkio_stats": {"io_service_bytes_recursive": []},
        }

    def _inspect_container(self, request, groups):
        container = self._container(groups["ref"])
        return 200, {"Id": container["id"], "State": container["State"], "Config": {"Labels": container["labels"]}}

    # secrets

    def _list_secrets(self, request, groups):
        filters = _filters(request)
        return 200, [
            s for s in self.secrets.values()
            if _labels_match(s["Spec"].get("Labels") or {}, filters.get("label", []))
            and all(s["Spec"]["Name"].startswith(n) for n in filters.get("name", []))
        ]

    def _create_secret(self, request, groups):
        spec = request.body
        if any(s["Spec"]["Name"] == spec["Name"] for s in self.secrets.values()):
            raise DockerError(409, f"rpc error: code = AlreadyExists desc = secret {spec['Name']} already exists")
        now = self._now()
        secret = {"ID": self._new_id(), "Version": {"Index": next(self._index)}, "CreatedAt": now, "UpdatedAt": now,
                  "Spec": _omit_empty({"Name": spec["Name"], "Labels": spec.get("Labels") or {}})}
        self.secrets[secret["ID"]] = secret
        self.secret_data[secret["ID"]] = base64.b64decode(spec.get("Data") or "")
        return 201, {"ID": secret["ID"]}

    def _remove_secret(self, request, groups):
        secret = self._secret(groups["ref"])
        users = sorted(
            s["Spec"]["Name"] for s in self.services.values()
            if any(ref.get("SecretID") == secret["ID"]
                   for ref in s["Spec"]["TaskTemplate"].get("ContainerSpec", {}).get("Secrets") or [])
        )
        if users:
            what = "service" if len(users) == 1 else "services"
            raise DockerError(400, "rpc error: code = InvalidArgument desc = "
                                   f"secret '{secret['Spec']['Name']}' is in use by the following {what}: {', '.join(users)}")
        next(self._index)
        del self.secrets[secret["ID"]], self.secret_data[secret["ID"]]
        return 204, None

    # configs

    def _config(self, ref: str) -> dict:
        return self._find(self.configs, "config", ref)

    def _list_configs(self, request, groups):
        filters = _filters(request)
        return 200, [
            c for c in self.configs.values()
            if _labels_match(c["Spec"].get("Labels") or {}, filters.get("label", []))
            and all(c["Spec"]["Name"].startswith(n) for n in filters.get("name", []))
        ]

    def _create_config(self, request, groups):
        spec = request.body
        if any(c["Spec"]["Name"] == spec["Name"] for c in self.configs.values()):
            raise DockerError(409, f"rpc error: code = AlreadyExists desc = config {spec['Name']} already exists")
        now = self._now()
        config = {"ID": self._new_id(), "Version": {"Index": next(self._index)}, "CreatedAt": now, "UpdatedAt": now,
                  "Spec": _omit_empty({"Name": spec["Name"], "Labels": spec.get("Labels") or {}, "Data": spec.get("Data")})}
        self.configs[config["ID"]] = config
        return 201, {"ID": config["ID"]}

    def _update_config(self, request, groups):
        config = self._config(groups["ref"])
        if request.query.get("version") != str(config["Version"]["Index"]):
            raise DockerError(500, OUT_OF_SEQUENCE)
        spec = request.body
        data = config["Spec"].get("Data")
        if spec.get("Name") != config["Spec"]["Name"] or spec.get("Data", data) != data:
            raise DockerError(400, "rpc error: code = InvalidArgument desc = only updates to Labels are allowed")
        config.update(Version={"Index": next(self._index)}, UpdatedAt=self._now(),
                      Spec={**config["Spec"], "Labels": spec.get("Labels") or {}})
        return 200, None

    def _remove_config(self, request, groups):
        config = self._config(groups["ref"])
        next(self._index)
        del self.configs[config["ID"]]
        return 204, None

    # logs

    def _service_logs(self, request, groups):
        sid = self._service(groups["ref"])["ID"]
        return self._logs_answer(request, lambda task: task["ServiceID"] == sid)

    def _task_logs(self, request, groups):
        tid = self._task(groups["ref"])["ID"]
        return self._logs_answer(request, lambda task: task["ID"] == tid)

    def _logs_answer(self, request, covers: Callable[[dict], bool]):
        params = request.query
        since = _since(params.get("since"))
        tail = params.get("tail", "all")
        backlog = []
        for task in self.tasks.values():
            if not covers(task):
                continue
            pieces = [p for p in self._logs.get(task["ID"], []) if p.at >= since and _wanted(p, params)]
            if tail != "all":
                pieces = pieces[-int(tail):] if int(tail) > 0 else []
            backlog += self._frames(task, pieces, params)
        follower = None
        if params.get("follow") in ("1", "true"):
            follower = _Follower(covers, params)
            self._followers.append(follower)
            self._follower_added.notify_all()
        return 200, _LogAnswer(backlog, follower)

    def _frames(self, task: dict, pieces: list[_LogPiece], params: dict) -> list[bytes]:
        frames = []
        for piece in pieces:
            if piece.at < _since(params.get("since")) or not _wanted(piece, params):
                continue
            prefix = b""
            if params.get("timestamps") in ("1", "true"):
                prefix += _format_ns(piece.at).encode() + b" "
            if params.get("details") in ("1", "true"):
                prefix += (f"com.docker.swarm.node.id={task['NodeID']},com.docker.swarm.service.id={task['ServiceID']},"
                           f"com.docker.swarm.task.id={task['ID']} ").encode()
            payload = prefix + piece.data + (b"\n" if piece.last else b"")
            frames.append(_chunk(bytes([piece.stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload))
        return frames


@dataclass
class _Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: object


@dataclass
class _LogAnswer:
    frames: list[bytes]  # already chunked
    follower: _Follower | None


def _filters(request: _Request) -> dict[str, list[str]]:
    raw = json.loads(request.query.get("filters") or "{}")
    # Both encodings the daemon accepts: {"k": ["v"]} and the older {"k": {"v": true}}.
    return {key: list(values) for key, values in raw.items()}


def _labels_match(labels: dict, wanted: list[str]) -> bool:
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _wanted(piece: _LogPiece, params: dict) -> bool:
    return params.get({1: "stdout", 2: "stderr"}[piece.stream]) in ("1", "true")


def _since(value: str | None) -> int:
    """Docker's ``since``: Unix seconds with an optional fraction of up to nine digits."""
    if not value:
        return 0
    seconds, _, fraction = value.partition(".")
    return int(seconds) * 10**9 + int(fraction.ljust(9, "0")[:9] or 0)


def _format_ns(at: int) -> str:
    seconds, nanos = divmod(at, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found", 409: "Conflict",
            500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


class _Transport(HTTPAdapter):
    """Answers the APIClient's requests from a FakeDocker, as HTTP/1.1 read back from a socket."""

    def __init__(self, engine: FakeDocker):
        super().__init__()
        self.engine = engine

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        status, body = self.engine.answer(request)
        client_end, daemon_end = socket.socketpair()
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\nApi-Version: {API_VERSION}\r\n"
        if isinstance(body, _LogAnswer) and body.follower is not None:
            pipe = _Pipe(daemon_end)
            # Under the follower's lock: a line logged meanwhile waits until the backlog is out.
            with body.follower.lock:
                body.follower.out = pipe
                pipe.write(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(body.frames + body.follower.pending))
        else:
            if isinstance(body, _LogAnswer):
                data = head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(body.frames) + b"0\r\n\r\n"
            else:
                if isinstance(body, str):
                    content, kind = body.encode(), "text/plain; charset=utf-8"
                else:
                    content, kind = (b"" if body is None else json.dumps(body).encode() + b"\n"), "application/json"
                head += f"Content-Type: {kind}\r\n" if content else ""
                data = head.encode() + f"Content-Length: {len(content)}\r\n\r\n".encode() + content
            if not _Pipe.send_all(daemon_end, data):
                pipe = _Pipe(daemon_end)
                pipe.write(data)
                pipe.close()
        answer = http.client.HTTPResponse(client_end, method=request.method)
        answer.begin()
        # The response holds the socket through its file object; this reference is not needed.
        client_end.close()
        raw = urllib3.HTTPResponse(
            body=answer, headers=answer.getheaders(), status=answer.status, reason=answer.reason,
            preload_content=False, decode_content=False, original_response=answer,
            request_method=request.method, request_url=request.url,
        )
        return self.build_response(request, raw)
