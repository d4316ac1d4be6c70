"""GET /_/routes: the routing table nginx calls functions with (app/routes.py), as nginx
configuration. nginx's side fetches it every second; nginx itself refuses ``/_/`` from outside."""

from __future__ import annotations

from flask import Blueprint, Response

from app.routes import render_routes
from app.state import provider, settings, upstreams

bp = Blueprint("routes", __name__)


@bp.get("/_/routes")
def routing_table():
    # Only functions with a running, up-to-date task: the others are the gateway's to wake.
    ready = [status.name for status in provider().list_functions() if status.available_replicas > 0]
    pools = upstreams()
    table = render_routes(pools.table(ready), pools.port, settings().route_fallback)
    return Response(table, mimetype="text/plain")
