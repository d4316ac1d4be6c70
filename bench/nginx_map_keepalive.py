"""Check: does nginx keep its upstream keep-alive pool when `proxy_pass` takes the group from a map?

The recommended design (docs/invoke-performance.md) routes `/function/NAME` with
`map $request_uri $fn_upstream` and `proxy_pass http://$fn_upstream$fn_rest$is_args$args`, the
map's values naming `upstream` blocks that have `keepalive`. This deploys one function through
the stack, starts nginx (the stack's image) on the functions network with that configuration
and, for comparison, a location proxying to the same task by a static name without keep-alive,
drives each with wrk for 6 s and counts nginx's sockets to port 8080 by TCP state halfway
through. `--pools 32,1024 --connections 512` adds static upstreams with those keep-alive pool
sizes: a pool smaller than the concurrency closes the connections beyond it after each call.
Removes what it made. Usage:

    .venv/bin/python -m bench.nginx_map_keepalive [--runtime classic] [--connections 16] [--seconds 6]
        [--pools 32,1024]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import invoke
from bench.common import stack_auth, wait_until
from bench.experiments import NGINX_TOP
from harness import docker

STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "04": "FIN_WAIT1", "05": "FIN_WAIT2"}


def conf(function: str, pools: list[int]) -> str:
    upstreams = "".join(
        f"    upstream fn_k{k} {{\n        server tasks.{function}:8080;\n        keepalive {k};\n    }}\n" for k in pools
    )
    locations = "".join(
        f"        location /k{k}/ {{\n            proxy_pass http://fn_k{k}/;\n        }}\n" for k in pools
    )
    return NGINX_TOP + f"""http {{
    access_log off;
    upstream fn_a {{
        server tasks.{function}:8080;
        keepalive 32;
    }}
{upstreams}    upstream gateway_pool {{
        server 127.0.0.1:9;
    }}
    map $request_uri $fn_upstream {{
        default gateway_pool;
        "~^/function/{function}(?:[/?]|$)" fn_a;
    }}
    map $request_uri $fn_rest {{
        default "/";
        "~^/function/[^/?]+(?<rest>/[^?]*)" $rest;
    }}
    server {{
        listen 8080;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location /function/ {{
            proxy_pass http://$fn_upstream$fn_rest$is_args$args;
        }}
        location /static/ {{
            proxy_pass http://tasks.{function}:8080/;
        }}
{locations}    }}
}}
"""


def states_to_port(pid: str, port: int = 8080) -> dict[str, int]:
    counts: collections.Counter = collections.Counter()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[2].endswith(f":{port:04X}"):
                counts[STATES.get(fields[3], fields[3])] += 1
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="classic", choices=list(invoke.RUNTIMES))
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument(
        "--pools", default="", help="also measure pools of these keepalive sizes (comma-separated), e.g. 32,1024",
    )
    args = parser.parse_args()
    pools = [int(k) for k in args.pools.split(",") if k]
    setup = invoke.Setup("http://127.0.0.1:8080", stack_auth(), [args.runtime], ["stack"])
    workdir = Path(tempfile.mkdtemp(prefix="bench-nginx-map-"))
    name = ""
    try:
        setup.start()
        function = setup.stack_functions[args.runtime]
        (workdir / "nginx.conf").write_text(conf(function, pools))
        port = invoke._free_host_port(set())
        name = f"bench-{setup.run_id}-nginx-map"
        image = docker("inspect", "-f", "{{.Config.Image}}", "openfaas_nginx_1")
        docker(
            "run", "-d", "--name", name, "--network", invoke.FUNCTIONS_NETWORK, "-p", f"127.0.0.1:{port}:8080",
            "-v", f"{workdir}/nginx.conf:/etc/nginx/nginx.conf:ro", image,
        )
        pid = docker("inspect", "-f", "{{.State.Pid}}", name)
        paths = [("map -> upstream with keepalive", f"/function/{function}"), ("static name, no keepalive", "/static/")]
        paths += [(f"static upstream, keepalive {k}", f"/k{k}/") for k in pools]
        for label, path in paths:
            url = f"http://127.0.0.1:{port}{path}"
            wait_until(lambda: invoke._answers(url), url)
            command = [
                "wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--timeout=10s", "-s", str(invoke.POST_SCRIPT), url,
            ]
            wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            time.sleep(args.seconds / 2)
            states = states_to_port(pid)
            result = invoke.parse_wrk(wrk.communicate(timeout=args.seconds + 60)[0])
            print(
                f"{label:32} c{args.connections}: {result.rps:6.0f} rps, non-2xx {result.non_2xx}, "
                f"socket errors {sum(result.socket_errors.values())}; nginx's sockets to :8080 halfway: {states}",
                flush=True,
            )
            time.sleep(61 if args.seconds >= 10 else 1)  # let TIME_WAIT from one path clear before the next
    finally:
        if name:
            docker("rm", "-f", name, check=False)
        setup.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
