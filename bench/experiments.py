"""Proxy designs measured beside the stack, faas-swarm and direct calls, in one bench.invoke run.

Nothing in deploy/ or app/ changes: each experiment is a container (or an address) this script
makes for the run and removes afterwards, in front of the same functions bench.invoke deploys:

  direct bridge IP       the direct task's bridge address: the floor without
                         docker-proxy (every host-mode port on loopback goes through it)
  gunicorn, no nginx     the running gateway container's docker_gwbridge address: gunicorn
                         alone, neither nginx nor docker-proxy in front
  nginx keepalive        a copy of the running stack's nginx.conf whose proxy_pass names an
                         upstream block (`server gateway:8080; keepalive 64;`) instead of the
                         variable $gateway, on the stack's edge network: nginx reuses its
                         connections to gunicorn (only when the running config has that variable)
  nginx->tasks keepalive nginx alone, an upstream block per function (`server tasks.NAME:8080;
                         keepalive 64;`), resolved when it starts: no Python on the call
  nginx->tasks resolver  the same nginx, `proxy_pass http://tasks.$fn:8080/` with Docker's DNS
                         (resolver 127.0.0.11): re-resolved, but a new connection per call

Usage (same options as bench.invoke):

    .venv/bin/python -m bench.experiments [--requests 500] [--seconds 10] [--rounds 2] ...
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import invoke
from harness import bridge_ip, docker

STACK_NGINX = "openfaas_nginx_1"
STACK_GATEWAY = "openfaas_gateway_1"
EDGE_NETWORK = "openfaas_edge"


def task_container(service: str) -> str:
    ids = docker("ps", "-q", "-f", f"label=com.docker.swarm.service.name={service}").split()
    if not ids:
        raise SystemExit(f"no running container for {service}")
    return ids[0]


# The top of every nginx configuration the experiments write: process settings, as deploy/nginx.conf.
NGINX_TOP = """user nobody nogroup;
worker_processes auto;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;
events {
    worker_connections 4096;
}
"""


def keepalive_conf(original: str) -> str:
    """deploy/nginx.conf with an upstream pool to gunicorn instead of a re-resolved variable."""
    pool = "    upstream gateway_pool {\n        server gateway:8080;\n        keepalive 64;\n    }\n"
    conf = original.replace("http {\n", "http {\n" + pool, 1)
    conf = conf.replace("        set $gateway http://gateway:8080;\n", "")
    conf = conf.replace("proxy_pass $gateway;", "proxy_pass http://gateway_pool;")
    assert "$gateway" not in conf and "gateway_pool;" in conf
    return conf


def tasks_conf(functions: list[str]) -> str:
    """nginx routing /function/NAME straight to the tasks: pooled (upstream blocks) and re-resolved."""
    upstreams = "".join(
        f"    upstream fn_{i} {{\n        server tasks.{name}:8080;\n        keepalive 64;\n    }}\n"
        for i, name in enumerate(functions)
    )
    pooled = "".join(
        f"        location = /function/{name} {{\n            proxy_pass http://fn_{i}/;\n        }}\n"
        for i, name in enumerate(functions)
    )
    return NGINX_TOP + f"""http {{
    log_format gateway '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                       '"$http_user_agent" rid=$request_id rt=$request_time';
    access_log /dev/stdout gateway;
    resolver 127.0.0.11 valid=1s ipv6=off;
    keepalive_timeout 75s;
{upstreams}    server {{
        listen 8080;
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header X-Call-Id $request_id;
        proxy_set_header X-Start-Time $msec;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_read_timeout 70s;
        add_header X-Call-Id $request_id always;
{pooled}        location ~ ^/resolved/function/([^/]+)$ {{
            proxy_pass http://tasks.$1:8080/;
        }}
    }}
}}
"""


def _nginx_accepts(test: list[str]) -> bool:
    return subprocess.run(["docker", *test], capture_output=True).returncode == 0


def prepare(setup: invoke.Setup) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-experiments-"))
    setup.cleanups.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
    nginx_image = docker("inspect", "-f", "{{.Config.Image}}", STACK_NGINX)
    functions = setup.stack_functions  # runtime -> name of the function deployed through the stack

    if "direct" in setup.paths:
        setup.add_path(
            "direct bridge IP",
            {r: f"http://{bridge_ip(task_container(setup.name(r, 'direct')))}:8080/" for r in setup.runtimes},
        )

    gateway_ip = bridge_ip(STACK_GATEWAY)
    setup.add_path("gunicorn, no nginx", {r: f"http://{gateway_ip}:8080/function/{fn}" for r, fn in functions.items()})

    def nginx(label: str, network: str, conf: str) -> int:
        name = f"bench-{setup.run_id}-{label}"
        path = workdir / f"{label}.conf"
        path.write_text(conf)
        port = invoke._free_host_port(setup.ports)
        setup.cleanups.append(lambda: docker("rm", "-f", name, check=False))
        setup.watch.append(name)
        docker(
            "run", "-d", "--name", name, "--network", network, "-p", f"127.0.0.1:{port}:8080",
            "-v", f"{path}:/etc/nginx/nginx.conf:ro", nginx_image,
        )
        return port

    # The stack's nginx.conf as its container sees it, with the gateway pooled: only where that
    # file still proxies everything to gunicorn through the variable and stands on its own.
    current = docker("exec", STACK_NGINX, "cat", "/etc/nginx/nginx.conf") + "\n"
    conf = workdir / "keepalive-test.conf"
    conf.write_text(keepalive_conf(current) if "proxy_pass $gateway;" in current else "")
    test = ["run", "--rm", "--network", EDGE_NETWORK, "-v", f"{conf}:/etc/nginx/nginx.conf:ro", nginx_image, "nginx", "-t"]
    if conf.read_text() and _nginx_accepts(test):
        port = nginx("nginx-keepalive", EDGE_NETWORK, conf.read_text())
        setup.add_path("nginx keepalive", {r: f"http://127.0.0.1:{port}/function/{fn}" for r, fn in functions.items()})
    else:
        print("# no 'nginx keepalive' experiment: the stack's nginx.conf is not the one it applies to", flush=True)

    port = nginx("nginx-tasks", invoke.FUNCTIONS_NETWORK, tasks_conf(list(functions.values())))
    setup.add_path("nginx->tasks keepalive", {r: f"http://127.0.0.1:{port}/function/{fn}" for r, fn in functions.items()})
    setup.add_path(
        "nginx->tasks resolver", {r: f"http://127.0.0.1:{port}/resolved/function/{fn}" for r, fn in functions.items()}
    )


if __name__ == "__main__":
    invoke.main(sys.argv[1:], prepare=prepare)
