"""GET /metrics: the Prometheus text exposition of every worker process, without auth."""

from __future__ import annotations

from flask import Blueprint, Response

from app.metrics import render

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    body, content_type = render()
    return Response(body, status=200, content_type=content_type)
