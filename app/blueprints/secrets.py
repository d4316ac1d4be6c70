"""/system/secrets (GET, POST, PUT, DELETE); values go in, never out, and are never logged."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.schemas import SecretNameSchema, SecretSchema, load_body
from app.state import provider, resolve_namespace

bp = Blueprint("secrets", __name__)
_SECRET = SecretSchema()
_NAME = SecretNameSchema()


def _load(schema) -> dict:
    body = load_body(schema, request)
    resolve_namespace(body.get("namespace"))
    return body


@bp.get("/system/secrets")
def list_secrets():
    resolve_namespace(request.args.get("namespace"))
    return jsonify(_NAME.dump([{"name": name} for name in provider().list_secrets()], many=True))


@bp.post("/system/secrets")
def create_secret():
    body = _load(_SECRET)
    provider().create_secret(body["name"], body["data"])
    return Response(status=201)


@bp.put("/system/secrets")
def update_secret():
    body = _load(_SECRET)
    provider().update_secret(body["name"], body["data"])
    return Response(status=200)


@bp.delete("/system/secrets")
def delete_secret():
    provider().delete_secret(_load(_NAME)["name"])
    # 200, not 204: faas-cli and the Go SDK take only 200 or 202 as success here.
    return Response(status=200)
