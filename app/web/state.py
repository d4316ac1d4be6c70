"""The parts one application is built from, and the typed accessors that reach them.

``create_app`` builds a ``Parts`` and ``install``s it on the Flask application; views reach each
part through the accessor of the same name (``functions()``, ``queue()`` ...) and never by a string
key, so a renamed or missing part is an error at import, not at request time.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, request

from app.background.autoscaler import Autoscaler
from app.queue.cron import CronScheduler
from app.background.timeseries import TimeSeries
from app.background.usage import UsageSampler
from app.config import Config
from app.dataplane.calllog import CallLog
from app.dataplane.forwarder import Forwarder
from app.dataplane.readiness import ReadinessProber, ReadinessView
from app.dataplane.upstreams import Upstreams
from app.domain.names import function_reference, parse_reference, require_namespace
from app.errors import InvalidRequest
from app.queue import Queue
from app.queue.worker import AsyncWorker
from app.runtime.interfaces import Edge, EventSource, Functions, Health, LogSource, Namespaces, Replicas, Runtime, Secrets
from app.runtime.label_cache import FunctionLabels
from app.web.auth import Credentials
from app.web.shutdown import Shutdown
from app.web.streaming import StreamSlots

_EXTENSION = "openfaas"


@dataclass(frozen=True)
class Parts:
    """Everything the views of one application use, built once by ``create_app``."""

    config: Config
    runtime: Runtime  # the orchestrator, one interface per concern
    stream_slots: StreamSlots  # the cap on open log and event streams in this process
    usage: UsageSampler  # replicas' resource use, sampled in the background per worker process
    upstreams: Upstreams  # where calls go: task addresses, scale from zero
    forwarder: Forwarder  # sends calls on to functions
    queue: Queue  # the durable async queue
    function_labels: FunctionLabels  # functions' labels as async calls are accepted, read once a second
    async_worker: AsyncWorker  # runs queued calls; started per worker process
    call_log: CallLog  # counts the calls nginx routed itself; started per worker process
    autoscaler: Autoscaler  # scales functions by load; started per worker process, one leads
    cron: CronScheduler  # puts cron functions' runs on the queue; started per worker process, one leads
    time_series: TimeSeries  # the dashboard's last hour per function; started per worker process, one samples
    readiness: ReadinessView  # which replicas passed their probes, as the prober last wrote
    prober: ReadinessProber  # probes every replica; started per worker process, one probes
    credentials: Credentials | None  # who may sign in; None when basic auth is off
    shutdown: Shutdown  # whether this worker process is stopping, once the server says


def install(app: Flask, parts: Parts) -> None:
    """Make ``parts`` what the accessors return inside ``app``."""
    app.extensions[_EXTENSION] = parts


def has_parts(app: Flask) -> bool:
    """Whether ``app`` is a gateway built by ``create_app`` (the node agent is not)."""
    return _EXTENSION in app.extensions


def parts_of(app: Flask) -> Parts:
    """The parts ``app`` was built with (outside a request, e.g. from gunicorn's hooks)."""
    return app.extensions[_EXTENSION]


def _parts() -> Parts:
    return parts_of(current_app)


def settings() -> Config:
    """The configuration this application was created with."""
    return _parts().config


def health() -> Health:
    return _parts().runtime.health


def functions() -> Functions:
    return _parts().runtime.functions


def function_labels() -> FunctionLabels:
    return _parts().function_labels


def replicas() -> Replicas:
    return _parts().runtime.replicas


def secrets() -> Secrets:
    return _parts().runtime.secrets


def namespaces() -> Namespaces:
    return _parts().runtime.namespaces


def edge() -> Edge:
    return _parts().runtime.edge


def log_source() -> LogSource:
    return _parts().runtime.logs


def event_source() -> EventSource:
    return _parts().runtime.events


def stream_slots() -> StreamSlots:
    return _parts().stream_slots


def usage() -> UsageSampler:
    return _parts().usage


def readiness() -> ReadinessView:
    return _parts().readiness


def upstreams() -> Upstreams:
    return _parts().upstreams


def forwarder() -> Forwarder:
    return _parts().forwarder


def queue() -> Queue:
    return _parts().queue


def time_series() -> TimeSeries:
    return _parts().time_series


def call_log() -> CallLog:
    return _parts().call_log


def shutdown() -> Shutdown:
    return _parts().shutdown


def credentials() -> Credentials | None:
    return _parts().credentials


def resolve_namespace(namespace: str | None) -> str:
    """The namespace a request means: the default when none is given.

    Raises InvalidRequest (400) naming the field for an invalid or unknown namespace.
    """
    default = settings().namespace
    if namespace in (None, "", default):
        return default
    require_namespace(namespace)
    if not namespaces().namespace_exists(namespace):
        raise InvalidRequest(f"Invalid namespace: namespace {namespace} does not exist; create it first.")
    return namespace


def request_namespace(given: str | None = None) -> str:
    """The namespace of this request: ``given`` (a body's field) or else the ``namespace``
    query parameter, resolved as ``resolve_namespace`` does."""
    return resolve_namespace(given or request.args.get("namespace"))


def own_function(reference: str) -> str | None:
    """The canonical reference (``app.domain.names.function_reference``) of the function a
    ``name[.namespace]`` names, or None when no function can be meant (an invalid name)."""
    return parse_reference(reference, settings().namespace)


def reference_of(name: str, namespace: str) -> str:
    """How calls and metrics name function ``name`` of ``namespace``."""
    return function_reference(name, namespace, settings().namespace)
