"""Function CRUD: /system/functions (GET, POST, PUT, DELETE), GET /system/function/{name} (both
GETs with ``usage`` on ``?usage=1``) and GET /system/function/{name}/instances."""

from __future__ import annotations

import dataclasses
import weakref
from typing import NamedTuple

from flask import Blueprint, Response, jsonify, request

from app import metrics
from app.domain.models import FunctionDeployment, FunctionStatus, Usage
from app.domain.names import require_function_name
from app.web.schemas import (
    DeleteFunctionSchema,
    FunctionDeploymentSchema,
    FunctionStatusesDumper,
    InstanceSchema,
    StatusQuerySchema,
    load_body,
    load_query,
)
from app.web.state import functions, readiness, reference_of, replicas, request_namespace, usage

bp = Blueprint("functions", __name__)
_DEPLOYMENT = FunctionDeploymentSchema()
_DELETE = DeleteFunctionSchema()
# Lists and single statuses apart: each dumper keeps only the JSON of what it dumped last.
_STATUSES, _STATUS = FunctionStatusesDumper(), FunctionStatusesDumper()
# The statuses whose replicas this process recorded: the runtime hands back the same object
# until the function changes, and a thousand gauges set per list took 6 ms.
_recorded: weakref.WeakValueDictionary[int, FunctionStatus] = weakref.WeakValueDictionary()
_STATUS_QUERY = StatusQuerySchema()
_INSTANCE = InstanceSchema()


def _deployment() -> FunctionDeployment:
    deployment = load_body(_DEPLOYMENT, request)
    return dataclasses.replace(deployment, namespace=request_namespace(deployment.namespace))


def _status_query() -> tuple[bool, str]:
    """Whether the status query asks for usage, and its namespace."""
    query = load_query(_STATUS_QUERY, request)
    return query.get("usage", False), request_namespace(query.get("namespace"))


class _Live(NamedTuple):
    """What a function's status shows that moves from one call to the next
    (``FunctionStatusesDumper.LIVE``)."""

    invocation_count: int
    available_replicas: int
    usage: Usage | None


def _live(statuses: list[FunctionStatus], ready: dict[str, int] | None, with_usage: bool) -> list[_Live]:
    """For each status, its invocation count from the metrics every worker shares, the last
    sampled usage when asked for (never waiting for stats) and, while replicas are probed (a
    fresh readiness view: ``ready``), the ready replicas of the current spec as available;
    replicas recorded."""
    counts = metrics.invocation_counts()
    sampled = usage()
    live = []
    for status in statuses:
        reference = reference_of(status.name, status.namespace)
        if _recorded.get(id(status)) is not status:
            metrics.set_replicas(reference, status.replicas)
            _recorded[id(status)] = status
        live.append(_Live(
            invocation_count=counts.get(reference, 0),
            available_replicas=status.available_replicas if ready is None else ready.get(reference, 0),
            usage=sampled.usage(status.namespace, status.name) if with_usage else None,
        ))
    return live


@bp.get("/system/functions")
def list_functions():
    with_usage, namespace = _status_query()
    # Probed replicas say what is available: the runtime need not count running ones.
    ready = readiness().availability()
    statuses = functions().list_functions(namespace, available=ready is None)
    return jsonify(_STATUSES.dump(statuses, _live(statuses, ready, with_usage)))


@bp.get("/system/function/<name>")
def get_function(name: str):
    with_usage, namespace = _status_query()
    status = functions().get_function(require_function_name(name), namespace)
    return jsonify(_STATUS.dump([status], _live([status], readiness().availability(), with_usage))[0])


@bp.get("/system/function/<name>/instances")
def function_instances(name: str):
    instances = usage().with_cpu(replicas().instances(require_function_name(name), request_namespace()))
    view = readiness()
    instances = [
        dataclasses.replace(instance, ready=view.ready(reference_of(instance.name, instance.namespace), instance.id))
        for instance in instances
    ]
    return jsonify(_INSTANCE.dump(instances, many=True))


@bp.post("/system/functions")
def deploy_function():
    functions().deploy(_deployment())
    return Response(status=202)


@bp.put("/system/functions")
def update_function():
    functions().update(_deployment())
    return Response(status=200)


@bp.delete("/system/functions")
def delete_function():
    body = load_body(_DELETE, request)
    functions().delete(body["functionName"], request_namespace(body.get("namespace")))
    return Response(status=200)
