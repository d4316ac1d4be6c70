"""Function CRUD: /system/functions (GET, POST, PUT, DELETE), GET /system/function/{name} (both
GETs with ``usage`` on ``?usage=1``) and GET /system/function/{name}/instances."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, Response, jsonify, request

from app import metrics
from app.domain.models import FunctionDeployment, FunctionStatus
from app.domain.names import require_function_name
from app.web.schemas import (
    DeleteFunctionSchema,
    FunctionDeploymentSchema,
    FunctionStatusesDumper,
    FunctionStatusSchema,
    InstanceSchema,
    StatusQuerySchema,
    load_body,
    load_query,
)
from app.web.state import functions, readiness, reference_of, replicas, request_namespace, usage

bp = Blueprint("functions", __name__)
_DEPLOYMENT = FunctionDeploymentSchema()
_DELETE = DeleteFunctionSchema()
_STATUS = FunctionStatusSchema()
_STATUSES = FunctionStatusesDumper()
_STATUS_QUERY = StatusQuerySchema()
_INSTANCE = InstanceSchema()


def _deployment() -> FunctionDeployment:
    deployment = load_body(_DEPLOYMENT, request)
    return dataclasses.replace(deployment, namespace=request_namespace(deployment.namespace))


def _status_query() -> tuple[bool, str]:
    """Whether the status query asks for usage, and its namespace."""
    query = load_query(_STATUS_QUERY, request)
    return query.get("usage", False), request_namespace(query.get("namespace"))


def _with_counts(statuses: list[FunctionStatus], with_usage: bool) -> list[FunctionStatus]:
    """Statuses with invocation counts from the metrics every worker shares, the last sampled
    usage when asked for (never waiting for stats) and, while replicas are probed, the ready
    replicas of the current spec as available; replicas recorded."""
    counts = metrics.invocation_counts()
    sampled = usage()
    view = readiness()
    counted = []
    for status in statuses:
        reference = reference_of(status.name, status.namespace)
        metrics.set_replicas(reference, status.replicas)
        available = view.available(reference)
        counted.append(
            dataclasses.replace(
                status,
                invocation_count=counts.get(reference, 0),
                usage=sampled.usage(status.namespace, status.name) if with_usage else None,
                available_replicas=status.available_replicas if available is None else available,
            )
        )
    return counted


@bp.get("/system/functions")
def list_functions():
    with_usage, namespace = _status_query()
    statuses = functions().list_functions(namespace)
    return jsonify(_STATUSES.dump(statuses, _with_counts(statuses, with_usage)))


@bp.get("/system/function/<name>")
def get_function(name: str):
    with_usage, namespace = _status_query()
    (status,) = _with_counts([functions().get_function(require_function_name(name), namespace)], with_usage)
    return jsonify(_STATUS.dump(status))


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
