"""What nginx's settings and per-call work cost, measured beside the stack in one bench.invoke run.

Each variant is a copy of the running stack's nginx container (same image, Lua modules,
credentials, networks and routes.sh, so it loads the same routing table and routes the calls to
the tasks itself) whose nginx.conf is deploy/nginx.conf with one change, published on a loopback
port of its own like the stack's (docker-proxy in front of each). Nothing in deploy/ or app/
changes, and the copies are removed at the end:

  same nginx           deploy/nginx.conf as it is: a second container, the noise between two
  1 worker             worker_processes 1 (the stack: auto, one per core)
  2 workers pinned     worker_processes 2 with worker_cpu_affinity auto (one core each)
  no counting          without log_by_lua: nginx does not count its calls for the gateway
  no call headers      /function/ without X-Call-Id and X-Start-Time (four maps per call)
  no access log        /function/ without its access log line (stdout, through Docker's log driver)
  access log buffered  /function/'s access log written 64 KiB (or a second) at a time

Usage (the stack from `make up`; same options as bench.invoke, e.g. --paths direct,stack):

    .venv/bin/python -m bench.nginx_variants [--rounds 2] [--runtimes of-watchdog] ...
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from bench import invoke
from bench.common import wait_until
from harness import ROOT, docker

STACK_NGINX = "openfaas_nginx_1"

# The per-call headers of /function/ the gateway's proxy also sets (deploy/nginx.conf).
_ACCESS_LOG = "access_log /dev/stdout gateway;"
_CALL_HEADERS = re.compile(r"^ *(proxy_set_header X-(Call-Id|Start-Time)|add_header X-(Call-Id|Start-Time)) .*\n", re.M)


def _function_location(conf: str, change: Callable[[str], str]) -> str:
    start = conf.index("        location /function/ {")
    end = conf.index("\n        }\n", start)
    return conf[:start] + change(conf[start:end]) + conf[end:]


VARIANTS: dict[str, Callable[[str], str]] = {
    "same nginx": lambda conf: conf,
    "1 worker": lambda conf: conf.replace("worker_processes auto;", "worker_processes 1;"),
    "2 workers pinned": lambda conf: conf.replace(
        "worker_processes auto;", "worker_processes 2;\nworker_cpu_affinity auto;"),
    "no counting": lambda conf: conf.replace('log_by_lua_block { require("calls").count() }', ""),
    "no call headers": lambda conf: _function_location(conf, lambda block: _CALL_HEADERS.sub("", block)),
    "no access log": lambda conf: _function_location(conf, lambda block: block.replace(
        _ACCESS_LOG, "access_log off;")),
    "access log buffered": lambda conf: _function_location(conf, lambda block: block.replace(
        _ACCESS_LOG, "access_log /dev/stdout gateway buffer=64k flush=1s;")),
}


def _routes(container: str, functions: list[str]) -> bool:
    """Whether the copy has loaded a table routing every one of ``functions`` itself."""
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=False)
    return all(f"+ fn_{fn} (" in logs.stderr for fn in functions)


def prepare(setup: invoke.Setup) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-nginx-variants-"))
    setup.cleanups.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
    stack = json.loads(docker("inspect", STACK_NGINX))[0]
    networks = list(stack["NetworkSettings"]["Networks"])
    mounts = [f"{m['Source']}:{m['Destination']}:ro" for m in stack["Mounts"] if m["Destination"] != "/etc/nginx/nginx.conf"]
    original = (ROOT / "deploy/nginx.conf").read_text()
    functions = list(setup.stack_functions.values())
    for index, (label, change) in enumerate(VARIANTS.items()):
        conf = change(original)
        if label != "same nginx" and conf == original:
            raise SystemExit(f"the variant {label!r} no longer changes deploy/nginx.conf")
        path = workdir / f"variant-{index}.conf"
        path.write_text(conf)
        name = f"bench-{setup.run_id}-nginx-{index}"
        port = invoke._free_host_port(setup.ports)
        setup.cleanups.append(lambda name=name: docker("rm", "-f", name, check=False))
        volumes = [option for mount in mounts for option in ("-v", mount)]
        docker(
            "create", "--name", name, "--network", networks[0], "--network-alias", name,
            "--sysctl", "net.ipv4.tcp_tw_reuse=1", "-p", f"127.0.0.1:{port}:8080",
            "-v", f"{path}:/etc/nginx/nginx.conf:ro", *volumes, "--entrypoint", "/bin/sh", stack["Config"]["Image"],
            "/etc/nginx/routes.sh",
        )
        for network in networks[1:]:
            docker("network", "connect", network, name)
        docker("start", name)
        wait_until(lambda: _routes(name, functions), f"{label} to route {', '.join(functions)}")
        setup.add_path(label, {runtime: f"http://127.0.0.1:{port}/function/{fn}"
                               for runtime, fn in setup.stack_functions.items()})


if __name__ == "__main__":
    invoke.main(sys.argv[1:], prepare=prepare)
