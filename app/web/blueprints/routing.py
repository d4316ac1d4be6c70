"""GET /_/routes and GET /_/routes/table: what nginx calls functions with
(app/dataplane/route_table.py), its configuration and its table. nginx's side
(deploy/nginx-routes.sh) asks for both every second with the gateway's basic-auth credentials
and the ETag of what it has: an unchanged document is a 304 with no body. nginx itself refuses
``/_/`` from outside.

The table holds the task addresses of every namespace's functions, and the gateway also listens
on the functions' networks, so both need the same credentials as ``/system`` (app/web/auth.py
guards every ``/_/`` path): a function can reach the gateway, not read where other namespaces'
tasks are."""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.dataplane.route_table import render_config, render_table
from app.web.state import call_log, edge, functions, reference_of, settings, upstreams

bp = Blueprint("routes", __name__)


@bp.get("/_/routes")
def routing_config():
    config = settings()
    text = render_config(
        fallback=config.route_fallback,
        upstream_timeout=config.upstream_timeout,
        call_log_port=call_log().port,
        call_log_token=call_log().token,
    )
    return _document(text)


@bp.get("/_/routes/table")
def routing_table():
    # Only functions that should keep running, with a ready replica (the upstreams' addresses):
    # the others are the gateway's to wake, and one just scaled to zero leaves the table before
    # its tasks stop. Without probes, only those with a running up-to-date task. Other
    # namespaces' functions only where nginx is on their networks (route_namespaces).
    config = settings()
    pools = upstreams()
    probing = pools.probing
    ready = [
        reference_of(status.name, status.namespace)
        for status in functions().list_functions(available=not probing)
        if status.replicas and (probing or status.available_replicas)
        and (config.route_namespaces or status.namespace == config.namespace)
    ]
    # nginx fetches this every second: the moment to notice it was recreated without the
    # namespaces' networks.
    edge().refresh_edge()
    text = render_table(pools.table(ready), port=pools.port, namespace=config.namespace)
    return _document(text)


def _document(text: str) -> Response:
    """``text`` with its ETag: 304 with no body when the client's If-None-Match names it."""
    response = Response(text, mimetype="text/plain")
    response.add_etag()
    return response.make_conditional(request)
