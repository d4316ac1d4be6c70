"""Check: does nginx keep its upstream keep-alive pool when `proxy_pass` takes the group from a map?

The recommended design (docs/invoke-performance.md) routes `/function/NAME` with
`map $request_uri $fn_upstream` and `proxy_pass http://$fn_upstream$fn_rest$is_args$args`, the
map's values naming `upstream` blocks that have `keepalive`. This deploys one function through
the stack, starts nginx (the stack's image) on the functions network with that configuration
and, for comparison, a location proxying to the same task by a static name without keep-alive,
drives each with wrk for 6 s and counts nginx's sockets to port 8080 by TCP state halfway
through. Removes what it made. Usage:

    .venv/bin/python -m bench.nginx_map_keepalive
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import invoke
from bench.common import docker, stack_auth, wait_until

STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "04": "FIN_WAIT1", "05": "FIN_WAIT2"}


def conf(function: str) -> str:
    return f"""user nobody nogroup;
worker_processes auto;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    upstream fn_a {{
        server tasks.{function}:8080;
        keepalive 32;
    }}
    upstream gateway_pool {{
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
    }}
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
    setup = invoke.Setup("http://127.0.0.1:8080", stack_auth(), ["classic"], ["stack"])
    workdir = Path(tempfile.mkdtemp(prefix="bench-nginx-map-"))
    name = ""
    try:
        setup.start()
        function = setup.stack_functions["classic"]
        (workdir / "nginx.conf").write_text(conf(function))
        port = invoke._free_host_port(set())
        name = f"bench-{setup.run_id}-nginx-map"
        image = docker("inspect", "-f", "{{.Config.Image}}", "openfaas_nginx_1")
        docker(
            "run", "-d", "--name", name, "--network", invoke.FUNCTIONS_NETWORK, "-p", f"127.0.0.1:{port}:8080",
            "-v", f"{workdir}/nginx.conf:/etc/nginx/nginx.conf:ro", image,
        )
        pid = docker("inspect", "-f", "{{.State.Pid}}", name)
        paths = (("map -> upstream with keepalive", f"/function/{function}"), ("static name, no keepalive", "/static/"))
        for label, path in paths:
            url = f"http://127.0.0.1:{port}{path}"
            wait_until(lambda: invoke._answers(url), url)
            command = ["wrk", "-t2", "-c16", "-d6s", "-s", str(invoke.POST_SCRIPT), url]
            wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            time.sleep(3)
            states = states_to_port(pid)
            result = invoke.parse_wrk(wrk.communicate(timeout=60)[0])
            print(f"{label:32} {result.rps:6.0f} rps, non-2xx {result.non_2xx}; nginx's sockets to :8080 at 3 s: {states}")
    finally:
        if name:
            docker("rm", "-f", name, check=False)
        setup.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
