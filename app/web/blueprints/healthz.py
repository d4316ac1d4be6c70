"""GET/HEAD /healthz: 200 when Docker answers and this node is a Swarm manager, else 500 saying which."""

from __future__ import annotations

from flask import Blueprint

from app.errors import BackendUnavailable
from app.web.handlers import text_response
from app.web.state import health

bp = Blueprint("healthz", __name__)


@bp.get("/healthz")
def healthz():
    try:
        health().check_health()
    except BackendUnavailable as exc:
        # The contract (and OpenFaaS health checks) expect 500 here, not the 503 other routes give.
        return text_response(exc.message, 500)
    return text_response("OK", 200)
