"""GET /openapi.yaml: the OpenAPI 3 document of what this service answers, without auth.

The document describes routes, not data, so it is as public as the routes themselves; the test
suite fuzzes the service against it, which keeps the two in step.
"""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, Response

bp = Blueprint("apidoc", __name__)
DOCUMENT = resources.files("app").joinpath("openapi.yaml").read_bytes()


@bp.get("/openapi.yaml")
def openapi_document():
    return Response(DOCUMENT, status=200, content_type="application/yaml")
