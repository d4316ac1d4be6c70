"""The routing table nginx calls functions with: which functions, at which task addresses.

Function calls do not pass through Python when nginx can route them: nginx (in C, over kept-alive
connections to each task) is four times cheaper per call than the Go provider this gateway
replaces, where the Python proxy is four times dearer (docs/invoke-performance.md). The gateway
stays the control plane and renders two things for nginx's side (``deploy/nginx-routes.sh``),
which asks for both again a second after each answer (the gateway holds a request for an unchanged
table until it changes, a few seconds at most: app/web/blueprints/routing.py):

- the table (``render_table``): each function's ready task addresses, which nginx takes into
  shared memory without a reload (``deploy/nginx-routes.lua``), so a deploy, a scale or a task
  moving closes no client's connection;
- its configuration (``render_config``): the gateway's own pool, the pool every task is reached
  through, the calls' deadline and where nginx sends the counts of the calls it routed; it
  changes only with the gateway's address or settings, and nginx reloads then.

A function is in the table while it should have replicas and has ready task addresses; functions
not in it (unknown, scaled to zero, just deployed) go to the gateway's proxy, which answers 404
or scales from zero. A task that went away before nginx took the next table refuses, and nginx
tries the next one; when none is left the call is a 502, as from the gateway's proxy (the gateway
cannot be a backup server: nginx would send it the function's own path). Names are DNS labels
and addresses come from DNS, so nothing a client sends reaches nginx.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from app.metrics import FUNCTION_BUCKETS

# Idle connections nginx keeps open to the tasks, per nginx worker: as many as calls in flight, or
# every call over the cap opens and closes a connection and leaves a TIME_WAIT port behind (at
# c512, 32 ran the ephemeral ports out within a minute).
KEEPALIVE = 1024
# How long nginx keeps an idle connection to a task: shorter than a watchdog's own idle timeout
# (Go's server closes idle connections after its read timeout, often 5-10 s), so nginx is the one
# to close it and never sends a call down a connection the function is closing.
IDLE_TIMEOUT = "4s"
# How long nginx keeps an idle connection to the gateway. A stopping gunicorn worker waits for
# every connection it holds to close (up to its graceful timeout, 30 s), idle ones too; nginx
# closing them soon ends a gateway's stop within seconds, and never mid-request, as the gateway
# closing them itself could. Below gunicorn's keepalive (75 s) for the same reason as above.
GATEWAY_IDLE_TIMEOUT = "2s"
# The pool of calls nginx does not route itself: the gateway's proxy.
FALLBACK_POOL = "gateway_fallback"
# A function's pool in the table, and in nginx's call log: the prefix, then its reference.
POOL_PREFIX = "fn_"
# Seconds in which a call may still move to another task: past one connect timeout (2 s).
NEXT_TASK_WINDOW = 3.0


def render_config(*, fallback: str, upstream_timeout: float, call_log_port: int, call_log_token: str) -> str:
    """nginx configuration (http context) that changes only with the gateway's address or
    settings.

    Defines the gateway's pool ``gateway_fallback`` at ``fallback`` (``host:port``) and the pool
    ``functions``, whose balancer (``deploy/nginx-routes.lua``) picks a task of the call's
    ``$function_pool`` from the table; sets ``proxy_read_timeout`` to ``upstream_timeout``: nginx
    enforces a function's deadline itself (``deploy/nginx.conf`` sets its other locations'
    timeouts explicitly). Each nginx worker counts the calls it routes itself
    (``deploy/nginx-calls.lua``) and sends the sums to the gateway (``fallback``'s host) on
    ``call_log_port``, UDP, in datagrams starting with ``call_log_token``, so the gateway knows
    they are nginx's (app/dataplane/calllog.py); with the port 0, nginx counts nothing.
    """
    return "\n".join([
        "# Rendered by the gateway (app/dataplane/route_table.py); nginx reloads when it changes.",
        f"proxy_read_timeout {upstream_timeout:g}s;",
        # Another task is tried only early on: for a refused or silent connection, never after a
        # read timeout (a second call of a slow function).
        f"proxy_next_upstream_timeout {min(upstream_timeout, NEXT_TASK_WINDOW):g}s;",
        f"upstream {FALLBACK_POOL} {{",
        f"    server {fallback};",
        f"    keepalive {KEEPALIVE};",
        f"    keepalive_timeout {GATEWAY_IDLE_TIMEOUT};",
        "}",
        "upstream functions {",
        # Never used: the balancer sets each call's task. nginx needs a server to accept the block.
        "    server 0.0.0.1;",
        '    balancer_by_lua_block { require("routes").balance() }',
        # After the balancer, so the pool of idle connections wraps it.
        f"    keepalive {KEEPALIVE};",
        f"    keepalive_timeout {IDLE_TIMEOUT};",
        "}",
        *_call_counting(fallback.rpartition(":")[0], call_log_port, call_log_token),
    ]) + "\n"


def _call_counting(host: str, port: int, token: str) -> list[str]:
    """The lines that start each nginx worker's call counting: none with the port 0."""
    if not port:
        return []
    # JSON strings are Lua strings too; the bounds as the gateway's histogram has them.
    bounds = ", ".join(f"{bound!r}" for bound in FUNCTION_BUCKETS)
    return [
        "init_worker_by_lua_block {",
        f"    require(\"calls\").start{{host = {json.dumps(host)}, port = {port}, token = {json.dumps(token)},",
        f"        buckets = {{{bounds}}}}}",
        "}",
    ]


def render_table(routes: Mapping[str, Sequence[str]], *, port: int, namespace: str) -> str:
    """The table ``deploy/nginx-routes.lua`` loads, for ``routes``: function reference (``name``
    in the default ``namespace``, ``name.namespace`` in any other) -> task IPv4 addresses.

    One line ``pool fn_<reference> <address>:<port> ...`` per function, then the lines ``name
    <key> fn_<reference>`` that route ``$function_name`` (the path segment after
    ``/function/``) to a pool: a function of the default namespace is reached both as ``name``
    and as ``name.<namespace>``. The pool's name is what nginx's call log reports, so the calls
    are counted under the reference. Sorted, so an unchanged table renders the same text.
    """
    lines = ["# Rendered by the gateway (app/dataplane/route_table.py); nginx loads it without a reload."]
    for reference, addresses in sorted(routes.items()):
        lines.append(f"pool {POOL_PREFIX}{reference} " + " ".join(f"{address}:{port}" for address in addresses))
    for reference in sorted(routes):
        lines.append(f"name {reference} {POOL_PREFIX}{reference}")
        if "." not in reference:
            lines.append(f"name {reference}.{namespace} {POOL_PREFIX}{reference}")
    return "\n".join(lines) + "\n"
