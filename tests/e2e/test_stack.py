"""The stack as users run it: `make up`, then everything through nginx on the published port."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from app.dataplane.calllog import parse
from app.dataplane.route_table import render_config, render_table
from app.domain.timestamps import now_rfc3339_nano
from harness import ROOT, basic_auth, nginx_files
from tests.e2e.stack import container
from tests.gateway import call
from tests.swarm import name
from tests.waiting import wait_for


def _auth(stack) -> dict[str, str]:
    return basic_auth(stack.user, stack.password)


def test_healthz_through_nginx(stack):
    status, body, headers = call(f"{stack.url}/healthz", headers={"Authorization": ""})
    assert (status, body) == (200, b"OK\n")
    assert headers["Server"] == "nginx"


def test_wrong_or_missing_credentials_are_401(stack):
    for headers in ({"Authorization": ""}, basic_auth(stack.user, "wrong"), basic_auth("nobody", stack.password)):
        status, _, response_headers = call(f"{stack.url}/system/functions", headers=headers)
        assert status == 401
        assert response_headers["WWW-Authenticate"] == 'Basic realm="OpenFaaS"'


def test_credentials_are_private_files(stack):
    for part in ("basic-auth-user", "basic-auth-password"):
        assert (stack.credentials / part).stat().st_mode & 0o777 == 0o600
    assert len(stack.password) >= 24


def test_deploy_list_status_logs_and_delete(stack, watchdog_image):
    fn = name("e2e")
    body = {"service": fn, "image": watchdog_image, "envVars": {"log_interval": "1"}}
    status, text, _ = call(f"{stack.url}/system/functions", "POST", body, _auth(stack))
    assert status == 202, text

    def available():
        listed = json.loads(call(f"{stack.url}/system/functions", headers=_auth(stack))[1])
        return [f for f in listed if f["name"] == fn and f["availableReplicas"] == 1]

    wait_for(available, timeout=90, what=f"{fn} to be listed as available")
    status, text, _ = call(f"{stack.url}/system/function/{fn}", headers=_auth(stack))
    assert status == 200 and json.loads(text)["availableReplicas"] == 1

    # A line logged after the request began must arrive while the stream is open: nginx
    # passes the stream through unbuffered.
    started = now_rfc3339_nano()
    parts = urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", f"/system/logs?name={fn}&follow=true&tail=1", headers=_auth(stack))
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/x-ndjson"
        deadline = time.monotonic() + 20
        fresh = None
        while fresh is None and time.monotonic() < deadline:
            line = json.loads(response.readline())
            if line["timestamp"] > started:
                fresh = line
        assert fresh is not None and fresh["text"].startswith("tick")
    finally:
        connection.close()

    assert call(f"{stack.url}/system/functions", "DELETE", {"functionName": fn}, _auth(stack))[0] == 200
    assert call(f"{stack.url}/system/function/{fn}", headers=_auth(stack))[0] == 404


def _containers(project: str) -> list[str]:
    listing = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(listing.stdout.split())


def test_make_up_prints_progress_and_its_summary_and_no_warning(stack):
    # Warnings docker-compose 1.29 printed here: secret uid/mode and endpoint_mode ignored, the
    # engine in swarm mode; python-dotenv's when apt's lines had landed in the env file.
    suspect = re.compile(r"warn|could not parse|not supported|ignor|deprecated|swarm mode", re.IGNORECASE)
    assert [line for line in stack.started.splitlines() if suspect.search(line)] == []
    assert "up: starting the stack" in stack.started and f"URL:      {stack.url}" in stack.started
    env_file = Path(stack.env["ENV_FILE"]).read_text().splitlines()
    assert [line for line in env_file if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", line)] == []


def test_a_second_make_up_changes_nothing(stack):
    project = stack.env["COMPOSE_PROJECT_NAME"]
    before = _containers(project)
    password = stack.credentials / "basic-auth-password"
    stamp = password.stat().st_mtime_ns
    again = stack.make("up")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _containers(project) == before and len(before) == 2
    assert password.read_text() == stack.password and password.stat().st_mtime_ns == stamp
    assert call(f"{stack.url}/system/info", headers=_auth(stack))[0] == 200


def test_nginx_carries_the_digest_of_the_files_it_started_with(stack):
    """What makes docker-compose start nginx again when one of its bind-mounted files changes."""
    digest = hashlib.sha256(b"".join((ROOT / path).read_bytes() for path in nginx_files())).hexdigest()[:16]
    label = subprocess.run(["docker", "inspect", container(stack, "nginx"), "-f",
                            '{{index .Config.Labels "com.openfaas.nginx-files"}}'],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert label == digest


def _raw(stack, request: bytes) -> tuple[int, str, bytes]:
    """Send a hand-made request; return status, Content-Type and body."""
    parts = urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.connect()
        connection.sock.sendall(request)
        response = http.client.HTTPResponse(connection.sock)
        response.begin()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_oversized_requests_are_refused_with_a_sentence(stack):
    auth = _auth(stack)["Authorization"]
    huge_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\nConnection: close\r\n\r\n"
    long_line = b"GET /healthz?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    big_body = b"x" * (1024 * 1024 + 1)
    too_large = (f"POST /system/functions HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                 f"Content-Length: {len(big_body)}\r\nConnection: close\r\n\r\n").encode() + big_body
    assert _raw(stack, huge_header) == (400, "text/plain", b"A request header is longer than 8 KiB.\n")
    assert _raw(stack, long_line)[0] == 414
    assert _raw(stack, too_large) == (413, "text/plain", b"The request body is larger than this route accepts.\n")


def _nginx_image(stack, tmp_path: Path, config: str) -> list[str]:
    """``docker run`` options and image for nginx's image, with nginx's configuration and Lua
    modules as the stack runs them, ``config`` as the gateway's rendered part and ``tmp_path`` at
    /tables."""
    (tmp_path / "routes.conf").write_text(config)
    env_file = Path(stack.env["ENV_FILE"]).read_text()
    image = re.search(r"^NGINX_IMAGE=(.+)$", env_file, re.MULTILINE).group(1)
    return [
        "-v", f"{ROOT / 'deploy/nginx.conf'}:/etc/nginx/nginx.conf:ro",
        "-v", f"{ROOT / 'deploy/nginx-routes.lua'}:/etc/nginx/routes.lua:ro",
        "-v", f"{ROOT / 'deploy/nginx-calls.lua'}:/etc/nginx/calls.lua:ro",
        "-v", f"{tmp_path / 'routes.conf'}:/etc/nginx/routes.conf:ro",
        "-v", f"{tmp_path}:/tables:ro",
        "--entrypoint", "sh", image,
    ]


# Starts nginx in the background and waits until its loader answers.
_START_NGINX = ("nginx -t -q && nginx && "
                "for try in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8081/ && break; sleep 0.1; done")


def _nginx(stack, tmp_path: Path, config: str, script: str, *options: str) -> subprocess.CompletedProcess:
    """``script`` run by sh in nginx's image (``_nginx_image``); after ``$load`` (in the script)
    nginx runs in the background and its loader answers."""
    return subprocess.run(
        ["docker", "run", "--rm", *options, *_nginx_image(stack, tmp_path, config), "-c",
         script.replace("$load", _START_NGINX)],
        capture_output=True, text=True, timeout=120,
    )


def test_nginx_takes_a_table_of_the_longest_names_and_thousands_of_functions(stack, tmp_path):
    """nginx's image, configuration and Lua module as the stack runs them: the configuration the
    gateway renders passes `nginx -t`, and a table of the longest references and thousands of
    functions is taken whole (a refused table leaves the running one in place, stale)."""
    longest = "f" * 63
    routes = {longest: ["10.0.0.1"], f"{longest}.{'n' * 63}": ["10.0.0.2"]}
    routes.update((f"fn-{index}", [f"10.1.{index // 250}.{index % 250 + 1}"]) for index in range(3000))
    table = render_table(routes, port=8080, namespace="openfaas-fn")
    (tmp_path / "routes.table").write_text(table)
    (tmp_path / "broken.table").write_text(table + "pool fn_x 10.0.0.1\n")
    config = render_config(fallback="127.0.0.1:8080", upstream_timeout=60, call_log_port=5514, call_log_token="t0k3n")
    checked = _nginx(stack, tmp_path, config, (
        "$load && for name in routes broken; do "
        "curl -sS -w ' %{http_code}\\n' --data-binary @/tables/$name.table http://127.0.0.1:8081/routes; done"
    ), "--add-host", "gateway:127.0.0.1")
    assert checked.returncode == 0, checked.stderr
    lines = len(table.splitlines())
    assert checked.stdout.splitlines() == [
        " 204", f"line {lines + 1}: not an IPv4 address and port: 10.0.0.1", " 400"]


@contextlib.contextmanager
def _call_log(network: str) -> Iterator[tuple[socket.socket, str]]:
    """A UDP socket on the host's address on Docker ``network`` (its gateway), and the rendered
    configuration that has nginx send its counts there, with the token t0k3n."""
    host = subprocess.run(["docker", "network", "inspect", network, "-f", "{{(index .IPAM.Config 0).Gateway}}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind((host, 0))
        receiver.settimeout(10)
        yield receiver, render_config(fallback=f"{host}:8080", upstream_timeout=60,
                                      call_log_port=receiver.getsockname()[1], call_log_token="t0k3n")


def test_nginx_sends_the_gateway_the_sums_of_the_calls_it_routed_also_when_it_stops(stack, tmp_path):
    """Each nginx worker counts the calls it routes itself (deploy/nginx-calls.lua) and sends the
    sums to the gateway's call log, in datagrams of at most 8 KiB: here the sums are due only in
    a minute, so they arrive only because a worker that stops (as on a reload) sends what it has."""
    with _call_log("bridge") as (receiver, config):
        # The functions are nginx's own loader server, which answers 404 to any other path: echo
        # called five times, and 600 more once each, whose sums fill several datagrams.
        routes = {"echo": ["127.0.0.1"], **{f"fn-{index}": ["127.0.0.1"] for index in range(600)}}
        (tmp_path / "routes.table").write_text(render_table(routes, port=8081, namespace="ns"))
        checked = _nginx(stack, tmp_path, config.replace('start{', 'start{interval = 60, '), (
            "$load && curl -sS --data-binary @/tables/routes.table http://127.0.0.1:8081/routes && "
            "for call in 1 2 3 4 5; do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:8080/function/echo/x; "
            "done >/tmp/codes; for index in $(seq 0 599); do curl -s -o /dev/null http://127.0.0.1:8080/function/fn-$index; "
            "done; nginx -s quit; for try in $(seq 100); do [ -e /tmp/nginx.pid ] || break; sleep 0.1; done; "
            "echo codes: $(cat /tmp/codes)"
        ))
        assert checked.returncode == 0, checked.stderr
        assert "codes: 404 404 404 404 404" in checked.stdout.splitlines()
        datagrams, sums = [], []
        while sum(line.calls for line in sums) < 605:
            datagrams.append(receiver.recv(65536))
            token, lines = parse(datagrams[-1])
            assert token == "t0k3n"
            sums.extend(lines)
    assert max(len(datagram) for datagram in datagrams) <= 8192 and len(datagrams) >= 4
    assert sum(line.calls for line in sums) == 605
    assert {(line.function, line.status) for line in sums} == {("echo", 404)} | {(f"fn-{i}", 404) for i in range(600)}
    assert sum(line.calls for line in sums if line.function == "echo") == 5


def test_nginx_keeps_the_sums_it_cannot_send_and_sends_them_once_it_can(stack, tmp_path):
    """A send that fails (here: no route to the gateway, nginx's container taken off its only
    network) keeps the sums for the next round and is logged once by each nginx worker; once the
    network is back, every call arrives, counted once."""
    network, container = name("calls-net"), name("calls-nginx")
    subprocess.run(["docker", "network", "create", network], capture_output=True, check=True)
    try:
        with _call_log(network) as (receiver, config):
            # echo is nginx's own loader server, which answers 404 to any other path.
            (tmp_path / "routes.table").write_text(render_table({"echo": ["127.0.0.1"]}, port=8081, namespace="ns"))
            subprocess.run(["docker", "run", "-d", "--name", container, "--network", network,
                            *_nginx_image(stack, tmp_path, config), "-c",
                            _START_NGINX + " && curl -sS --data-binary @/tables/routes.table http://127.0.0.1:8081/routes"
                            " && touch /tmp/loaded && sleep 600"], capture_output=True, check=True)

            def in_nginx(script: str) -> subprocess.CompletedProcess:
                return subprocess.run(["docker", "exec", container, "sh", "-c", script],
                                      capture_output=True, text=True, timeout=60)

            def warnings() -> list[str]:
                logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True).stderr
                return [line for line in logs.splitlines() if "calls: cannot send" in line]

            wait_for(lambda: in_nginx("[ -e /tmp/loaded ]").returncode == 0, timeout=30, interval=0.2,
                     what="nginx to take the table")
            subprocess.run(["docker", "network", "disconnect", network, container], capture_output=True, check=True)
            calls = "for call in 1 2 3 4 5; do curl -s -o /dev/null http://127.0.0.1:8080/function/echo/x; done"
            assert in_nginx(calls).returncode == 0
            wait_for(warnings, timeout=10, interval=0.2, what="nginx to say it cannot send")
            assert in_nginx(calls).returncode == 0
            subprocess.run(["docker", "network", "connect", network, container], capture_output=True, check=True)
            sums = []
            while sum(line.calls for line in sums) < 10:
                token, lines = parse(receiver.recv(65536))
                assert token == "t0k3n"
                sums.extend(lines)
            # Nothing counted twice: no datagram follows.
            receiver.settimeout(1)
            try:
                extra = receiver.recv(65536)
            except socket.timeout:
                extra = None
            assert extra is None, parse(extra)
            assert {(line.function, line.status) for line in sums} == {("echo", 404)}
            assert sum(line.calls for line in sums) == 10
            # Once by each nginx worker that had calls to send.
            workers = [re.search(r" (\d+)#\d+: ", warning).group(1) for warning in warnings()]
            assert len(workers) == len(set(workers)) >= 1
            assert all("(kept for the next try): network is unreachable" in warning for warning in warnings())
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


def test_the_gateway_stops_without_waiting_for_nginx_s_idle_connections(stack):
    """A stopping gunicorn worker waits, up to its graceful timeout, for every connection it holds
    to close, idle kept-alive ones too; nginx closes its idle connections to the gateway soon, so
    after requests through nginx every worker ends by itself (logs that it exits) instead of being
    killed at the timeout, 30 s later."""
    gateway = container(stack, "gateway")
    started = subprocess.run(["docker", "inspect", gateway, "-f", "{{.State.StartedAt}}"],
                             capture_output=True, text=True, check=True).stdout.strip()
    for _ in range(8):
        assert call(f"{stack.url}/system/info", headers=_auth(stack))[0] == 200
    try:
        subprocess.run(["docker", "stop", "-t", "60", gateway], capture_output=True, check=True, timeout=90)
        logs = subprocess.run(["docker", "logs", "--since", started, gateway], capture_output=True, text=True, check=True)
        booted = set(re.findall(r"Booting worker with pid: (\d+)", logs.stderr + logs.stdout))
        exited = set(re.findall(r"Worker exiting \(pid: (\d+)\)", logs.stderr + logs.stdout))
        assert booted and exited == booted
    finally:
        restarted = stack.make("up")
        assert restarted.returncode == 0, restarted.stderr[-3000:]
