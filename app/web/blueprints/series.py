"""GET /system/function/{name}/series: the last hour of a function's calls per second by status
code, latency (p50, p99), replicas, CPU and memory, as the gateway sampled them
(app/background/timeseries.py)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from app.domain.names import require_function_name
from app.web.state import functions, reference_of, request_namespace, settings, time_series

bp = Blueprint("series", __name__)


@bp.get("/system/function/<name>/series")
def function_series(name: str):
    """200 with ``{"name", "interval", "points"}``; 400 bad name or namespace, 404 unknown function."""
    status = functions().get_function(require_function_name(name), request_namespace())
    points = time_series().points(reference_of(status.name, status.namespace))
    return jsonify({"name": status.name, "interval": settings().series_interval, "points": points})
