"""The node agent's HTTP: readings of function containers and the node's container events (the
contract ``app.runtime.swarm.agents`` and the event stream rely on).

- ``GET /healthz``: 200 while this node's Docker answers (no token needed).
- ``POST /node/containers`` ``{"containers": [id...], "what": ["json", "stats"]}``: Docker's
  inspection and one-shot stats of each function container among them on this node,
  ``{id: {"json": {...} | null, "stats": {...} | null}}``; others are left out.
- ``GET /node/events?since=<unix time>``: this node's Docker events of function containers
  (start, die, oom, health_status), one Docker event JSON per line, for up to ``write_timeout``.
"""

from __future__ import annotations

import json
import re
import time

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from marshmallow import Schema, ValidationError, fields, validate

from app.errors import InvalidRequest
from app.runtime.swarm.client import docker_errors
from app.runtime.swarm.node_docker import CONTAINER_EVENTS, READINGS, LocalNode

bp = Blueprint("agent", __name__)

_CONTAINER_ID = re.compile(r"[0-9a-f]{12,64}")
_READ_SIZE = 64 * 1024


class _Containers(Schema):
    containers = fields.List(fields.String(validate=validate.Regexp(_CONTAINER_ID)), required=True)
    what = fields.List(fields.String(validate=validate.OneOf(sorted(READINGS))), required=True)


def _node() -> LocalNode:
    return current_app.extensions["node"]


def _body(schema: Schema) -> dict:
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return schema.load(body)
    except ValidationError as exc:
        field, problems = next(iter(exc.normalized_messages().items()))
        raise InvalidRequest(f"Invalid {field}: {problems}") from None


@bp.get("/healthz")
def healthz():
    _node().client.check_health()
    return "OK"


@bp.post("/node/containers")
def containers():
    body = _body(_Containers())
    return jsonify(_node().read_containers(body["containers"], tuple(body["what"])))


@bp.get("/node/events")
def events():
    since = request.args.get("since", "")
    if since and not re.fullmatch(r"\d+(\.\d{1,9})?", since):
        raise InvalidRequest(f"Invalid since: {since!r} is not a Unix time such as 1796559000.123456789.")
    node = _node()
    # Docker ends the stream itself at `until`: a quiet stream never outlives its client for long.
    params = {"filters": json.dumps(CONTAINER_EVENTS), "until": f"{time.time() + node.client.config.write_timeout:.0f}"}
    if since:
        params["since"] = since
    with docker_errors("stream its events"):
        response = node.client.request("GET", "/events", params=params, stream=True, timeout=(10, None))

    def relay():
        try:
            for chunk in response.raw.stream(_READ_SIZE, decode_content=False):
                yield chunk
        finally:
            response.close()

    return Response(stream_with_context(relay()), mimetype="application/x-ndjson")
