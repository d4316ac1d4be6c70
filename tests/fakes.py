"""Stand-ins for the unit tests of the HTTP layer.

Functions and secrets are the real Swarm runtime over the in-memory Docker Engine of
``tests.fakedocker``: what the gateway decides about them is never re-implemented here. The log
source stays fake, because the HTTP tests are about streaming (batches, a follow that stays quiet
until the deadline), which ``tests/unit/test_service_logs.py`` covers for the real one.
"""

from __future__ import annotations

import threading

from app.config import Config
from app.domain.models import FunctionDeployment
from app.runtime.interfaces import Functions, Runtime
from app.runtime.swarm.assembly import swarm_runtime
from tests.fakedocker import FakeDocker


def fake_runtime(engine: FakeDocker | None = None, config: Config | None = None) -> Runtime:
    """The real Swarm adapter over an in-memory Docker Engine (a new one unless given)."""
    return swarm_runtime(config or Config(), (engine or FakeDocker()).client())


class FakeLogStream:
    """Yields its messages, then (when ``hold`` is set) waits until closed, like a quiet follow."""

    def __init__(self, messages: list, hold: bool):
        self.messages = messages
        self.hold = hold
        self.closed = threading.Event()

    def __iter__(self):
        yield list(self.messages)
        if self.hold:
            self.closed.wait(30)

    def close(self) -> None:
        self.closed.set()


class FakeLogSource:
    """Serves preset messages for functions the runtime knows."""

    def __init__(self, functions: Functions):
        self.functions = functions
        self.messages: dict[str, list] = {}
        self.hold = False
        self.opened: list[tuple] = []

    def open(self, request):
        self.functions.get_function(request.name, request.namespace)
        stream = FakeLogStream(self.messages.get(request.name, []), self.hold)
        self.opened.append((request, stream))
        return stream


# The Swarm adapter's tests: a function to deploy, and what the Engine then holds.
UPDATE = r"/services/[^/]+/update"


def fn(name: str = "echo", **extra) -> FunctionDeployment:
    return FunctionDeployment(service=name, image="docker.io/functions/alpine:latest", env_process="cat", **extra)


def replicas(engine: FakeDocker, name: str) -> int:
    return engine.service(name)["Spec"]["Mode"]["Replicated"]["Replicas"]


def mounted(engine: FakeDocker, name: str) -> list[str]:
    return [ref["SecretName"] for ref in engine.service(name)["Spec"]["TaskTemplate"]["ContainerSpec"].get("Secrets", [])]
