"""The runtime: what the gateway needs from an orchestrator, one small interface per concern.

A blueprint or loop depends on the one interface it uses, never on Docker: ``Health`` (is the
orchestrator usable; prepare it at process start), ``Functions`` (discover and change
functions, find their replicas' addresses), ``Replicas`` (each replica's health and counters),
``Secrets``, ``Namespaces``, ``Edge`` (keep the gateway and nginx attached to every namespace's
network), ``LogSource`` and ``EventSource``. ``Runtime`` bundles one of each; ``app.runtime.swarm``
builds the Docker Swarm one (``swarm_runtime``), and the unit tests run that over an in-memory
Docker Engine. A second orchestrator would implement these, without touching the blueprints.

Functions and secrets live in namespaces. A ``namespace`` argument of None means the default
namespace (``Config.namespace``), except for ``list_functions``, where it means every namespace;
callers pass namespaces that exist (``Namespaces.namespace_exists``). Every method raises only
``app.errors.GatewayError`` subclasses, each of which the error handler renders with its status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from app.domain.models import (
    EventRequest,
    FunctionDeployment,
    FunctionEndpoints,
    FunctionEvent,
    FunctionStatus,
    Instance,
    LogMessage,
    LogRequest,
    Namespace,
    ReplicaStats,
)


class Health(Protocol):
    def check_health(self) -> None:
        """Return when the orchestrator answers and can manage services.

        Raises BackendUnavailable (503; /healthz reports it as 500) saying what is wrong.
        """

    def prepare(self) -> None:
        """Check health, then create the functions network when it is missing and connect the
        edge containers to every namespace's network (once per process, at its start).

        Raises BackendUnavailable when the orchestrator cannot be used.
        """


class Functions(Protocol):
    def list_functions(self, namespace: str | None = None, *, available: bool = True) -> list[FunctionStatus]:
        """Every function of ``namespace`` (of every namespace when None), at a constant cost in
        orchestrator calls. With ``available`` False, ``available_replicas`` is 0 and the
        replicas are not asked for: for callers that do not read it, or know it otherwise."""

    def get_function(self, name: str, namespace: str | None = None) -> FunctionStatus:
        """One function. Raises NotFound (404) when no function of ours has that name there."""

    def function_addresses(
        self, name: str, namespace: str | None, resolve: Callable[[str], list[str]]
    ) -> list[str]:
        """The addresses of the function's running replicas, from ``resolve`` (DNS: a host name
        to addresses) asked for the host the orchestrator gives them; empty when none."""

    def function_endpoints(self) -> list[FunctionEndpoints]:
        """Every function of every namespace that has a running replica, with its running
        replicas' addresses, the replicas being stopped included, at a constant cost in
        orchestrator calls (functions at zero have nothing to probe or route)."""

    def roll_back(self, name: str, namespace: str, version: int, reason: str) -> None:
        """Put back the spec the function had before its last update, keeping its replicas, and
        record ``reason`` (its status and events then say ``rolled_back``).

        Raises NotFound (404) for an unknown function, Conflict (409) when its spec is no longer
        at ``version`` or has nothing to roll back to.
        """

    def deploy(self, deployment: FunctionDeployment) -> None:
        """Create a function in ``deployment.namespace``.

        Raises Conflict (409) when the name is taken, NotFound (404) for an unknown secret,
        InvalidRequest (400) when the orchestrator refuses the spec (e.g. an unknown network).
        """

    def update(self, deployment: FunctionDeployment) -> None:
        """Replace a function's spec with a start-first rolling update keeping its replica count.

        Raises NotFound (404) for an unknown function or secret, InvalidRequest (400) as deploy.
        """

    def delete(self, name: str, namespace: str | None = None) -> None:
        """Remove a function. Raises NotFound (404) when no function of ours has that name."""

    def scale(self, name: str, replicas: int, namespace: str | None = None) -> int:
        """Set the desired replicas (0 allowed, a maximum set by label honoured); return them.

        Raises NotFound (404) when no function of ours has that name.
        """


class Replicas(Protocol):
    def replica_stats(self, name: str | None = None, namespace: str | None = None) -> list[ReplicaStats]:
        """The counters of each running replica the orchestrator can measure from here, of
        function ``name`` of ``namespace`` or of every function (``name`` None); one read
        each, never waiting for a second.

        Raises NotFound (404) when ``name`` is given and no function of ours has it.
        """

    def instances(self, name: str, namespace: str | None = None) -> list[Instance]:
        """Every current replica of a function, by slot, with its health and the counters the
        orchestrator has (``cpu`` left UNMEASURED: a rate needs two readings, see
        app.background.usage).

        Raises NotFound (404) when no function of ours has that name.
        """


class Secrets(Protocol):
    def list_secrets(self, namespace: str | None = None) -> list[str]:
        """Names of the secrets the gateway manages in the namespace; values are never read."""

    def create_secret(self, name: str, data: bytes, namespace: str | None = None) -> None:
        """Create a secret. Raises Conflict (409) when the name is taken in the namespace,
        InvalidRequest (400) when name and namespace together are too long to store."""

    def update_secret(self, name: str, data: bytes, namespace: str | None = None) -> None:
        """Store a new value and roll every function of the namespace that mounts it onto it.

        Raises NotFound (404) for an unknown secret.
        """

    def delete_secret(self, name: str, namespace: str | None = None) -> None:
        """Remove a secret. Raises NotFound (404) when unknown, Conflict (409) naming the
        functions that still mount it."""


class Namespaces(Protocol):
    def namespace_exists(self, namespace: str) -> bool:
        """Whether ``namespace`` exists (the default one always does)."""

    def list_namespaces(self) -> list[str]:
        """The names of every namespace, the default one included, sorted."""

    def get_namespace(self, namespace: str) -> Namespace:
        """One namespace with its labels and annotations. Raises NotFound (404)."""

    def create_namespace(self, namespace: Namespace) -> None:
        """Create a namespace with its own network. Raises Conflict (409) when it exists."""

    def update_namespace(self, namespace: Namespace) -> None:
        """Replace a namespace's labels and annotations. Raises NotFound (404)."""

    def delete_namespace(self, namespace: str) -> None:
        """Remove an empty namespace. Raises NotFound (404) when unknown, InvalidRequest (400)
        for the default namespace, Conflict (409) naming the functions and secrets left."""


class Edge(Protocol):
    def refresh_edge(self, force: bool = False) -> None:
        """Connect the edge containers (the gateway, nginx) to any namespace network they are
        not on; cheap to call often, it looks at most every few seconds unless ``force``."""


class LogStream(Protocol):
    def __iter__(self) -> Iterator[list[LogMessage]]:
        """Batches of messages, each as soon as it arrives (a ``tail`` backlog in time order),
        until the source ends; batching lets a fast source be written with few system calls."""

    def close(self) -> None:
        """End the stream and release its connection at once; callable from any thread."""


class LogSource(Protocol):
    def open(self, request: LogRequest) -> LogStream:
        """Prepare a log stream for a function.

        Raises NotFound (404) for an unknown function or instance and BackendUnavailable (503)
        when the backend cannot be reached, before any message is produced.
        """


class EventStream(Protocol):
    def __iter__(self) -> Iterator[list[FunctionEvent]]:
        """Batches of events as they happen, until closed; when the orchestrator goes away the
        stream says so (``stream.disconnected``), retries, and says when it is back
        (``stream.reconnected``)."""

    def close(self) -> None:
        """End the stream and release its connection at once; callable from any thread."""


class EventSource(Protocol):
    def open(self, request: EventRequest) -> EventStream:
        """Prepare an event stream of the functions ``request`` names (they need not exist yet).

        Raises BackendUnavailable (503) when the backend cannot be reached, before any event.
        """


@dataclass(frozen=True)
class Runtime:
    """One orchestrator's implementation of every concern."""

    health: Health
    functions: Functions
    replicas: Replicas
    secrets: Secrets
    namespaces: Namespaces
    edge: Edge
    logs: LogSource
    events: EventSource
