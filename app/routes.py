"""The routing table nginx calls functions with: which functions, at which task addresses.

Function calls do not pass through Python when nginx can route them: nginx (in C, over kept-alive
connections to each task) is four times cheaper per call than the Go provider this gateway
replaces, where the Python proxy is four times dearer (docs/invoke-performance.md). The gateway
stays the control plane: it renders this table as nginx configuration, and nginx's side
(``deploy/nginx-routes.sh``) fetches it every second and reloads nginx when it changes.

A function is in the table while it has task addresses; each pool ends with the gateway as a
backup server, which nginx uses when every task refuses (a task that went away before the next
reload) — nothing was sent yet, so the gateway's proxy takes the call as before. Functions not
in the table (unknown, scaled to zero, just deployed) go to the gateway's proxy, which answers
404 or scales from zero. Names are DNS labels and addresses come from DNS, so nothing a client
sends reaches nginx's configuration.
"""

from __future__ import annotations

from typing import Mapping, Sequence

# Idle connections nginx keeps open to one function's tasks, per nginx worker.
KEEPALIVE = 32


def render_routes(routes: Mapping[str, Sequence[str]], port: int, fallback: str) -> str:
    """nginx configuration for ``routes`` (function name -> task IPv4 addresses, in order).

    Defines ``upstream fn_<name>`` per function and the map ``$function_pool`` from
    ``$function_name`` to it (empty for any other name). ``fallback`` is the gateway's
    ``host:port`` as nginx reaches it.
    """
    lines = ["# Rendered by the gateway (app/routes.py); nginx reloads when it changes."]
    for name, addresses in sorted(routes.items()):
        lines.append(f"upstream fn_{name} {{")
        # One refusal sets a task aside briefly; the backup takes calls no task would.
        lines += [f"    server {address}:{port} max_fails=1 fail_timeout=2s;" for address in addresses]
        lines.append(f"    server {fallback} backup;")
        lines.append(f"    keepalive {KEEPALIVE};")
        lines.append("}")
    lines.append("map $function_name $function_pool {")
    lines.append('    default "";')
    lines += [f"    {name} fn_{name};" for name in sorted(routes)]
    lines.append("}")
    return "\n".join(lines) + "\n"
