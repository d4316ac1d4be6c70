"""Function CRUD: /system/functions (GET, POST, PUT, DELETE) and GET /system/function/{name}."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.errors import InvalidRequest
from app.models import FunctionDeployment
from app.schemas import DeleteFunctionSchema, FunctionDeploymentSchema, FunctionStatusSchema, function_name_error, load_body
from app.state import provider, resolve_namespace

bp = Blueprint("functions", __name__)
_DEPLOYMENT = FunctionDeploymentSchema()
_DELETE = DeleteFunctionSchema()
_STATUS = FunctionStatusSchema()


def valid_function_name(name: str) -> str:
    """Return ``name`` when it is a valid function name; raise InvalidRequest (400) otherwise."""
    error = function_name_error(name)
    if error:
        raise InvalidRequest(error[0].upper() + error[1:] + ".")
    return name


def _deployment() -> FunctionDeployment:
    deployment = load_body(_DEPLOYMENT, request)
    resolve_namespace(deployment.namespace)
    return deployment


@bp.get("/system/functions")
def list_functions():
    resolve_namespace(request.args.get("namespace"))
    return jsonify(_STATUS.dump(provider().list_functions(), many=True))


@bp.get("/system/function/<name>")
def get_function(name: str):
    resolve_namespace(request.args.get("namespace"))
    return jsonify(_STATUS.dump(provider().get_function(valid_function_name(name))))


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
