"""/system/secrets (GET, POST, PUT, DELETE); values go in, never out, and are never logged."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.web.schemas import SecretNameSchema, SecretSchema, load_body
from app.web.state import request_namespace, secrets

bp = Blueprint("secrets", __name__)
_SECRET = SecretSchema()
_NAME = SecretNameSchema()


def _load(schema) -> dict:
    """The body, its ``namespace`` resolved (from the query when the body has none)."""
    body = load_body(schema, request)
    return {**body, "namespace": request_namespace(body.get("namespace"))}


@bp.get("/system/secrets")
def list_secrets():
    return jsonify(_NAME.dump([{"name": name} for name in secrets().list_secrets(request_namespace())], many=True))


@bp.post("/system/secrets")
def create_secret():
    body = _load(_SECRET)
    secrets().create_secret(body["name"], body["data"], body["namespace"])
    return Response(status=201)


@bp.put("/system/secrets")
def update_secret():
    body = _load(_SECRET)
    secrets().update_secret(body["name"], body["data"], body["namespace"])
    return Response(status=200)


@bp.delete("/system/secrets")
def delete_secret():
    body = _load(_NAME)
    secrets().delete_secret(body["name"], body["namespace"])
    # 200, not 204: faas-cli and the Go SDK take only 200 or 202 as success here.
    return Response(status=200)
