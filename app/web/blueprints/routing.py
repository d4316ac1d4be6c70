"""GET /_/routes and GET /_/routes/table: what nginx calls functions with
(app/dataplane/route_table.py), its configuration and its table. nginx's side
(deploy/nginx-routes.sh) asks for both again a second after each answer, with the gateway's
basic-auth credentials and the ETag of what it has: an unchanged document is a 304 with no body,
and for the table it asks the gateway to wait a few seconds for a change first (``Prefer:
wait``), so a new table reaches nginx when the gateway sees it. nginx itself refuses ``/_/``
from outside.

The table holds the task addresses of every namespace's functions, and the gateway also listens
on the functions' networks, so both need the same credentials as ``/system`` (app/web/auth.py
guards every ``/_/`` path): a function can reach the gateway, not read where other namespaces'
tasks are."""

from __future__ import annotations

import re
import time
from typing import Callable

from flask import Blueprint, Response, request

from app.dataplane.route_table import render_config, render_table
from app.web.state import call_log, edge, functions, reference_of, settings, shutdown, upstreams

bp = Blueprint("routes", __name__)

# The longest a request for an unchanged document waits for it to change, when it asks to
# (``Prefer: wait=N``, RFC 7240): nginx's side then starts a curl every few seconds instead of
# every second.
MAX_WAIT = 5.0
# How often a waiting request renders its document again.
WAIT_POLL = 0.2


@bp.get("/_/routes")
def routing_config():
    config = settings()
    return _document(lambda: render_config(
        fallback=config.route_fallback,
        upstream_timeout=config.upstream_timeout,
        call_log_port=call_log().port,
        call_log_token=call_log().token,
    ))


@bp.get("/_/routes/table")
def routing_table():
    # nginx asks for this every few seconds: the moment to notice it was recreated without the
    # namespaces' networks.
    edge().refresh_edge()
    return _document(_table)


def _table() -> str:
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
    return render_table(pools.table(ready), port=pools.port, namespace=config.namespace)


def _document(render: Callable[[], str]) -> Response:
    """The text ``render`` makes, with its ETag: 304 with no body when the client's If-None-Match
    names it, once it has not changed for as long as ``Prefer: wait=N`` asks (at most MAX_WAIT
    seconds) or the worker begins to stop; a change within that time is answered when it is
    seen."""
    deadline = time.monotonic() + _wait()
    while True:
        response = Response(render(), mimetype="text/plain")
        response.add_etag()
        response.make_conditional(request)
        if response.status_code != 304 or time.monotonic() >= deadline or shutdown().stopping:
            return response
        time.sleep(WAIT_POLL)


def _wait() -> float:
    """The seconds the request's ``Prefer: wait=N`` asks for, at most MAX_WAIT; 0 without one."""
    asked = re.search(r"(?:^|[\s,;])wait=(\d+)", request.headers.get("Prefer", ""))
    return min(float(asked.group(1)), MAX_WAIT) if asked else 0.0
