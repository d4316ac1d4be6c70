"""Namespaces as OpenFaaS clients manage them (openfaas/go-sdk): GET /system/namespaces lists the
names; POST /system/namespace/ creates one; GET, PUT and DELETE /system/namespace/{name} read,
relabel and remove one.

The path names the namespace on PUT; a body whose ``name`` names another one is a 400.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.domain.names import require_namespace
from app.errors import InvalidRequest
from app.web.schemas import NamespaceSchema, load_body
from app.web.state import namespaces

bp = Blueprint("namespaces", __name__)
_NAMESPACE = NamespaceSchema()


@bp.get("/system/namespaces")
def list_namespaces():
    return jsonify(namespaces().list_namespaces())


@bp.post("/system/namespace/")
def create_namespace():
    namespaces().create_namespace(load_body(_NAMESPACE, request))
    return Response(status=201)


@bp.get("/system/namespace/<name>")
def get_namespace(name: str):
    return jsonify(_NAMESPACE.dump(namespaces().get_namespace(require_namespace(name))))


@bp.put("/system/namespace/<name>")
def update_namespace(name: str):
    require_namespace(name)
    namespace = load_body(_NAMESPACE, request)
    if namespace.name != name:
        raise InvalidRequest(f"Invalid name: {namespace.name!r} differs from the namespace {name!r} in the path.")
    namespaces().update_namespace(namespace)
    return Response(status=200)


@bp.delete("/system/namespace/<name>")
def delete_namespace(name: str):
    namespaces().delete_namespace(require_namespace(name))
    return Response(status=200)
