"""POST /system/scale-function/{name}: set a function's desired replicas (0 allowed).

The path names the function; a body whose ``serviceName`` or ``service`` names another one is a
400 naming that field.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.domain.names import require_function_name
from app.errors import InvalidRequest
from app.web.schemas import ScaleRequestSchema, load_body
from app.web.state import functions, request_namespace

bp = Blueprint("scale", __name__)
_SCALE = ScaleRequestSchema()


@bp.post("/system/scale-function/<name>")
def scale_function(name: str):
    require_function_name(name)
    body = load_body(_SCALE, request)
    for field in ("serviceName", "service"):
        if body.get(field, name) != name:
            raise InvalidRequest(f"Invalid {field}: {body[field]!r} differs from the function {name!r} in the path.")
    functions().scale(name, body["replicas"], request_namespace(body.get("namespace")))
    return Response(status=202)
