"""Function CRUD: /system/functions (GET, POST, PUT, DELETE) and GET /system/function/{name}."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, Response, jsonify, request

from app import metrics
from app.models import FunctionDeployment, FunctionStatus
from app.names import require_function_name
from app.schemas import DeleteFunctionSchema, FunctionDeploymentSchema, FunctionStatusSchema, load_body
from app.state import provider, resolve_namespace

bp = Blueprint("functions", __name__)
_DEPLOYMENT = FunctionDeploymentSchema()
_DELETE = DeleteFunctionSchema()
_STATUS = FunctionStatusSchema()


def _deployment() -> FunctionDeployment:
    deployment = load_body(_DEPLOYMENT, request)
    resolve_namespace(deployment.namespace)
    return deployment


def _with_counts(statuses: list[FunctionStatus]) -> list[FunctionStatus]:
    """Statuses with invocation counts from the metrics every worker shares; replicas recorded."""
    counts = metrics.invocation_counts()
    for status in statuses:
        metrics.set_replicas(status.name, status.replicas)
    return [dataclasses.replace(status, invocation_count=counts.get(status.name, 0)) for status in statuses]


@bp.get("/system/functions")
def list_functions():
    resolve_namespace(request.args.get("namespace"))
    return jsonify(_STATUS.dump(_with_counts(provider().list_functions()), many=True))


@bp.get("/system/function/<name>")
def get_function(name: str):
    resolve_namespace(request.args.get("namespace"))
    (status,) = _with_counts([provider().get_function(require_function_name(name))])
    return jsonify(_STATUS.dump(status))


@bp.post("/system/functions")
def deploy_function():
    provider().deploy(_deployment())
    return Response(status=202)


@bp.put("/system/functions")
def update_function():
    provider().update(_deployment())
    return Response(status=200)


@bp.delete("/system/functions")
def delete_function():
    body = load_body(_DELETE, request)
    resolve_namespace(body.get("namespace"))
    provider().delete(body["functionName"])
    return Response(status=200)
