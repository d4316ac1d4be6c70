"""Stand-ins for the unit tests of the HTTP layer.

Functions and secrets are the real ``SwarmProvider`` over the in-memory Docker Engine of
``tests.fakedocker``: what the gateway decides about them is never re-implemented here. The log
source stays fake, because the HTTP tests are about streaming (batches, a follow that stays quiet
until the deadline), which ``tests/unit/test_swarm_logs.py`` covers for the real one.
"""

from __future__ import annotations

import threading

from app.config import Config
from app.runtime.swarm.provider import SwarmProvider
from tests.fakedocker import FakeDocker


def swarm_provider(engine: FakeDocker | None = None, config: Config | None = None) -> SwarmProvider:
    """The real Swarm adapter over an in-memory Docker Engine (a new one unless given)."""
    return SwarmProvider(config or Config(), (engine or FakeDocker()).client())


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
    """Serves preset messages for functions the provider knows."""

    def __init__(self, provider: SwarmProvider):
        self.provider = provider
        self.messages: dict[str, list] = {}
        self.hold = False
        self.opened: list[tuple] = []

    def open(self, request):
        self.provider.function_service(request.name, request.namespace)
        stream = FakeLogStream(self.messages.get(request.name, []), self.hold)
        self.opened.append((request, stream))
        return stream
