"""The local multi-node cluster (`make cluster`, scripts/cluster.sh) as the cluster tests and the
cluster benchmark drive it: its API, its nodes' Docker, a steady call load and the event stream.

Everything here talks only to the cluster's own containers, through `docker exec`, and to its
entry on the host's loopback. Loops are bounded: a load runs until stopped or for at most its
``limit`` seconds; an event reader until closed.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from harness import ROOT, docker, openfaas_binary

CLUSTER = "faas-cluster"
NODES = ("node-1", "node-2", "node-3")
# What the cluster script pushes for test functions, as the nodes pull it.
CLASSIC_IMAGE = "registry:5000/faas-test/classic-watchdog:latest"


def node_container(node: str) -> str:
    """The container of a node (``node-2`` -> ``faas-cluster-node-2``)."""
    return f"{CLUSTER}-{node}"


def on(node: str, *args: str, check: bool = True) -> str:
    """Run a command inside a node's container (usually ``docker ...`` against its dockerd)."""
    return docker("exec", node_container(node), *args, check=check)


def cluster_script(action: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``scripts/cluster.sh up|down``; its output is captured. ``up`` on a fresh machine builds
    the node image first (minutes); ``timeout`` bounds either."""
    return subprocess.run(
        ["bash", "scripts/cluster.sh", action], cwd=ROOT, env={**os.environ, **(env or {})},
        capture_output=True, text=True, check=False, timeout=timeout,
    )


def send(session: requests.Session, method: str, url: str, **kwargs) -> tuple[requests.Response, bool]:
    """One request, and whether it was sent again: once, when nginx had closed the kept-alive
    connection before any answer (a reload after a deploy closes idle connections). Go's HTTP
    client, which faas-cli and the SDKs use, does the same, so such a race fails none of their
    calls either."""
    try:
        return session.request(method, url, **kwargs), False
    except requests.ConnectionError as exc:
        if "Connection aborted" not in str(exc):
            raise
        return session.request(method, url, **kwargs), True


@dataclass
class Cluster:
    """The cluster's entry and credentials, as `make cluster` printed them."""

    url: str = "http://127.0.0.1:8180"
    credentials: Path = ROOT / ".cluster" / "credentials"
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.auth = ((self.credentials / "basic-auth-user").read_text(), (self.credentials / "basic-auth-password").read_text())
        self.session.auth = self.auth

    def api(self, method: str, path: str, body: object = None, timeout: float = 30, **kwargs) -> requests.Response:
        return send(self.session, method, self.url + path, json=body, timeout=timeout, **kwargs)[0]

    def deploy(self, name: str, *, replicas: int = 1, namespace: str = "", image: str = CLASSIC_IMAGE,
               handler: str = "cat", labels: dict[str, str] | None = None) -> None:
        """Deploy a function on the classic watchdog running the shell snippet ``handler`` (body
        on stdin, reply on stdout) with ``replicas`` fixed by its min and max labels."""
        body = {
            "service": name, "image": image, "namespace": namespace, "envVars": {"handler": handler},
            "labels": {"com.openfaas.scale.min": str(replicas), "com.openfaas.scale.max": str(replicas), **(labels or {})},
        }
        response = self.api("POST", "/system/functions", body)
        assert response.status_code in (200, 202), response.text
        self.api("POST", f"/system/scale-function/{name}", {"serviceName": name, "namespace": namespace, "replicas": replicas})

    def remove(self, name: str, namespace: str = "") -> None:
        self.api("DELETE", "/system/functions", {"functionName": name, "namespace": namespace})

    def tasks(self, service: str) -> list[dict]:
        """The running tasks of a Swarm service: ``{"node", "container", "id"}`` each."""
        out = on("node-1", "docker", "service", "ps", "--no-trunc", service, "--filter", "desired-state=running",
                 "--format", "{{json .}}", check=False)
        running = [json.loads(line) for line in out.splitlines() if line.strip()]
        found = []
        for task in running:
            if not task["CurrentState"].startswith("Running"):
                continue
            inspected = json.loads(on("node-1", "docker", "inspect", task["ID"]))[0]
            container = ((inspected.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
            found.append({"node": task["Node"], "container": container, "id": task["ID"]})
        return found

    def call(self, name: str, body: bytes = b"hi", timeout: float = 10) -> requests.Response:
        return requests.post(f"{self.url}/function/{name}", data=body, timeout=timeout)


def faas_cli(cluster: Cluster, *args: str, timeout: float = 60) -> str:
    """Run the real faas-cli against the cluster, logged in with a config folder of its own."""
    home = ROOT / ".cluster" / "faas-cli"
    home.mkdir(parents=True, exist_ok=True)
    # Its login (credentials) goes in that folder and nowhere else: faas-cli was seen writing
    # .openfaas/ into the folder it ran in, so it runs there too, told where its config is.
    env = {**os.environ, "HOME": str(home), "OPENFAAS_CONFIG": str(home / ".openfaas"), "OPENFAAS_URL": cluster.url}
    cli = str(openfaas_binary("faas-cli"))
    subprocess.run([cli, "login", "--username", cluster.auth[0], "--password-stdin"], input=cluster.auth[1],
                   env=env, cwd=home, capture_output=True, text=True, check=True, timeout=timeout)
    result = subprocess.run([cli, *args], env=env, cwd=home, capture_output=True, text=True, check=True,
                            timeout=timeout)
    return result.stdout


@dataclass
class Outcome:
    started: float
    ok: bool
    detail: str  # the status code, or the name of the error
    client: int = 0  # which of the load's clients made the call
    answer: str = ""  # the body of a successful call, stripped


class Load:
    """``clients`` threads calling ``url`` in a loop, each on a kept-alive connection, until
    ``stop`` or ``limit`` seconds; every call's start time, success and answer is kept, in the
    order each client made them."""

    def __init__(self, url: str, clients: int = 16, limit: float = 180, timeout: float = 30,
                 body: bytes = b"load", method: str = "POST", auth: tuple[str, str] | None = None):
        self.url, self.body, self.method, self.auth = url, body, method, auth
        self.timeout, self.limit = timeout, limit
        self.outcomes: list[Outcome] = []
        self.resent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(client,), daemon=True) for client in range(clients)]

    def start(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def _run(self, client: int) -> None:
        session = requests.Session()
        session.auth = self.auth
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                response = self._send(session)
                ok = response.status_code < 400
                outcome = Outcome(started, ok, str(response.status_code), client, response.text.strip() if ok else "")
            except requests.RequestException as exc:
                outcome = Outcome(started, False, type(exc).__name__, client)
                session = requests.Session()
                session.auth = self.auth
            with self._lock:
                self.outcomes.append(outcome)

    def _send(self, session: requests.Session) -> requests.Response:
        response, resent = send(session, self.method, self.url, data=self.body, timeout=self.timeout)
        if resent:
            with self._lock:
                self.resent += 1
        return response

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return self.outcomes

    def answers(self) -> list[list[str]]:
        """Each client's successful answers, in the order it got them."""
        with self._lock:
            return [[o.answer for o in self.outcomes if o.ok and o.client == client] for client in range(len(self._threads))]

    def failures(self) -> list[Outcome]:
        with self._lock:
            return [outcome for outcome in self.outcomes if not outcome.ok]


class Events:
    """Reads ``/system/events`` in a thread until closed: every event's type and data."""

    def __init__(self, cluster: Cluster, query: str = ""):
        self.events: list[tuple[str, dict]] = []
        self._response = cluster.session.get(f"{cluster.url}/system/events{query}", stream=True, timeout=(5, None))
        self._response.raise_for_status()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        kind = None
        try:
            for line in self._response.iter_lines(decode_unicode=True):
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind:
                    self.events.append((kind, json.loads(line.split(":", 1)[1])))
        except (requests.RequestException, ValueError, AttributeError):
            pass  # closed

    def of(self, kind: str) -> list[dict]:
        return [data for event, data in list(self.events) if event == kind]

    def close(self) -> None:
        self._response.close()
