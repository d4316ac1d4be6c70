"""The test function images (images/watchdog): the real classic watchdog and the real of-watchdog
in mode=http, built offline, as plain containers. Needs a local docker daemon; builds the images.

What the other tests rely on is checked here once: the `handler` convention on both images, the
log helpers, a fast stop, and where the two watchdogs differ (the classic one answers HEAD and
OPTIONS with its own 405 and puts "exit status N" before a failing handler's output). Also the
of-watchdog image's upstream (images/watchdog/upstream.c) on its own: kept-alive connections,
bodies echoed without forking, a handler's long output streamed."""

import hashlib
import http.client
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time

import docker
import pytest

from harness import OPENFAAS_BIN_DIR, ROOT
from tests.binaries import openfaas_binary
from tests.swarm import CLASSIC_IMAGE, OF_WATCHDOG_IMAGE

BUILD = ROOT / "images" / "watchdog" / "build.sh"
PREFIX = "wdtest-"
# The binary each image must carry as /usr/bin/fwatchdog, and the version it logs at start.
WATCHDOGS = {CLASSIC_IMAGE: ("fwatchdog", "Version: 0.3.0"), OF_WATCHDOG_IMAGE: ("of-watchdog", "Version: 0.9.15")}
both = pytest.mark.parametrize("image", [CLASSIC_IMAGE, OF_WATCHDOG_IMAGE])


@pytest.fixture(scope="module")
def client():
    c = docker.from_env()
    yield c
    c.close()


@pytest.fixture(scope="module", autouse=True)
def images(client):
    out = subprocess.run([str(BUILD)], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == [CLASSIC_IMAGE, OF_WATCHDOG_IMAGE]


def _accepts(ip: str, port: int) -> bool:
    try:
        socket.create_connection((ip, port), timeout=1).close()
        return True
    except OSError:
        return False


def _healthy(ip: str) -> bool:
    try:
        return request(ip, "GET", "/_/health")[0] == 200
    except OSError:
        return False


@pytest.fixture
def run(client):
    """Start a container of an image and return (container, ip) once the watchdog reports itself
    healthy; every container is force-removed at teardown, whatever happened."""
    created = []

    def _run(image, env=None, **kwargs):
        container = client.containers.run(
            image, name=PREFIX + secrets.token_hex(4), environment=env or {}, detach=True, **kwargs
        )
        created.append(container)
        container.reload()
        ip = container.attrs["NetworkSettings"]["IPAddress"]
        deadline = time.monotonic() + 10
        # of-watchdog is healthy once it has started its upstream, which may not listen yet:
        # wait for that too (the upstream listens on every address, so it can be seen from here).
        while not (_healthy(ip) and (image == CLASSIC_IMAGE or _accepts(ip, 8082))):
            assert time.monotonic() < deadline, container.logs().decode()
            time.sleep(0.05)
        return container, ip

    yield _run
    for container in created:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass


def request(ip, method, path, body=None, headers=None, port=8080, **kwargs):
    conn = http.client.HTTPConnection(ip, port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {}, **kwargs)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def env_of(body):
    return dict(line.split("=", 1) for line in body.decode().splitlines() if "=" in line)


@pytest.mark.parametrize("setting, folder", [(None, "shared/bin"), ("", "shared/bin"), ("../bin", "bin"),
                                             ("ABSOLUTE", "elsewhere")])
def test_the_build_names_the_missing_watchdog_binaries(tmp_path, setting, folder):
    # A clone with no binaries where $OPENFAAS_BIN_DIR (by default ../shared/bin) points: the
    # build stops before docker, saying what is missing and which setting names the folder.
    copy = tmp_path / "repo" / "images" / "watchdog"
    shutil.copytree(BUILD.parent, copy)
    env = {key: value for key, value in os.environ.items() if key != OPENFAAS_BIN_DIR}
    if setting is not None:
        env[OPENFAAS_BIN_DIR] = str(tmp_path / folder) if setting == "ABSOLUTE" else setting
    out = subprocess.run([str(copy / "build.sh"), "classic", "wdtest-never:latest"], capture_output=True, text=True,
                         env=env)
    assert out.returncode != 0
    assert f"{tmp_path}/{folder}/fwatchdog is missing" in out.stderr
    assert OPENFAAS_BIN_DIR in out.stderr and "docs/testing.md" in out.stderr


@both
def test_the_image_runs_the_real_watchdog(run, image):
    binary, version = WATCHDOGS[image]
    container, ip = run(image)
    _, inside = container.exec_run(["sha256sum", "/usr/bin/fwatchdog"])
    assert inside.split()[0].decode() == hashlib.sha256(openfaas_binary(binary).read_bytes()).hexdigest()
    assert version in container.logs().decode()
    status, headers, _ = request(ip, "GET", "/")
    assert status == 200 and float(headers["X-Duration-Seconds"]) >= 0


@both
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_the_handler_sees_method_path_query_and_headers(run, image, method):
    _, ip = run(image, {"handler": "env"})
    headers = {"X-Call-Id": "abc", "content-type": "application/json"}
    status, _, body = request(ip, method, "/some/path?a=1&b=two", body=b"{}", headers=headers)
    assert status == 200
    env = env_of(body)
    assert (env["Http_Method"], env["Http_Path"], env["Http_Query"]) == (method, "/some/path", "a=1&b=two")
    assert env["Http_X_Call_Id"] == "abc"
    assert env["Http_Content_Type"] == "application/json"


@both
def test_no_query_means_no_http_query(run, image):
    _, ip = run(image, {"handler": "env"})
    env = env_of(request(ip, "GET", "/plain")[2])
    assert env["Http_Path"] == "/plain"
    assert "Http_Query" not in env


def test_of_watchdog_passes_head_and_options_to_the_handler(run):
    _, ip = run(OF_WATCHDOG_IMAGE, {"handler": "env"})
    status, _, body = request(ip, "OPTIONS", "/opt?x=1")
    assert status == 200 and env_of(body)["Http_Method"] == "OPTIONS"
    status, headers, body = request(ip, "HEAD", "/")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_the_classic_watchdog_answers_head_and_options_itself_with_405(run):
    # Why the tests of these methods use the of-watchdog image.
    _, ip = run(CLASSIC_IMAGE, {"handler": "env"})
    assert request(ip, "OPTIONS", "/")[0] == 405
    status, _, body = request(ip, "HEAD", "/")
    assert (status, body) == (405, b"")


@both
def test_post_binary_1mb(run, image):
    _, ip = run(image)  # the default handler: cat
    payload = os.urandom(1024 * 1024) + b"\0\0\0tail\0"
    status, _, body = request(ip, "POST", "/", body=payload)
    assert status == 200
    assert body == payload


@both
def test_chunked_request_body(run, image):
    _, ip = run(image)
    parts = [b"first,", b"\0second\r\n,", os.urandom(70000), b"last"]
    status, _, body = request(ip, "POST", "/", body=iter(parts), encode_chunked=True)
    assert status == 200
    assert body == b"".join(parts)


@both
def test_a_failing_handler_is_a_500_with_its_output_and_errors(run, image):
    _, ip = run(image, {"handler": "echo out; echo err >&2; exit 3"})
    status, _, body = request(ip, "GET", "/")
    # The classic watchdog writes Go's error first; our upstream only the output.
    expected = b"exit status 3\nout\nerr\n" if image == CLASSIC_IMAGE else b"out\nerr\n"
    assert (status, body) == (500, expected)


@both
def test_content_type_env(run, image):
    _, ip = run(image, {"handler": "echo {}", "content_type": "application/json"})
    status, headers, body = request(ip, "GET", "/")
    assert (status, headers["Content-Type"], body) == (200, "application/json", b"{}\n")


@both
def test_concurrent_requests(run, image):
    _, ip = run(image, {"handler": "sleep 1; echo ok"})
    results = []

    def call():
        results.append(request(ip, "GET", "/"))

    threads = [threading.Thread(target=call) for _ in range(2)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - start
    assert [(s, b) for s, _, b in results] == [(200, b"ok\n")] * 2
    assert elapsed < 1.6, elapsed


@both
def test_readonly_rootfs_as_nobody(run, image):
    _, ip = run(image, {"handler": "id -un; cat"}, read_only=True, tmpfs={"/tmp": "rw,mode=1777"}, user="nobody")
    status, _, body = request(ip, "POST", "/", body=b"x")
    assert (status, body) == (200, b"nobody\nx")


@both
def test_log_helpers_and_fast_stop(run, image):
    container, ip = run(image, {"log_interval": "1", "log_burst": "3", "log_long_line": "20000"})
    request(ip, "GET", "/logged?q=1")
    # Each watchdog logs a call in its own words.
    logged = "Forking fprocess." if image == CLASSIC_IMAGE else "GET /logged?q=1 - 200 OK"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logs = container.logs().decode()
        if "tick 2" in logs and logged in logs:
            break
        time.sleep(0.2)
    assert "tick 1" in logs and "tick 2" in logs and logged in logs
    assert "burst 1\nburst 2\nburst 3\n" in logs and "x" * 20000 + "\n" in logs
    start = time.monotonic()
    container.stop(timeout=10)
    assert time.monotonic() - start < 2


# The of-watchdog image's upstream, called directly on its port and through the watchdog.
UPSTREAM = 8082


def test_the_upstream_keeps_connections_alive_and_echoes_without_forking(run):
    container, ip = run(OF_WATCHDOG_IMAGE)  # no handler of its own: handler=cat
    conn = http.client.HTTPConnection(ip, UPSTREAM, timeout=20)
    try:
        conn.connect()
        sock = conn.sock
        for n, (body, chunked) in enumerate([(b"one", False), (b"", False), (os.urandom(200000), True)] * 3):
            conn.request("POST", f"/call/{n}", body=iter([body]) if chunked else body, encode_chunked=chunked)
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, body)
            # A Content-Length even for a chunked request, and the connection stays open.
            assert resp.getheader("Content-Length") == str(len(body)) and resp.getheader("Connection") is None
            assert conn.sock is sock
    finally:
        conn.close()
    # One long-lived upstream, and nothing forked per call (the watchdog would be its parent).
    _, ps = container.exec_run(["ps", "-o", "pid,ppid,args"])
    assert [line.split(None, 2)[2] for line in ps.decode().splitlines()[1:] if "upstream" in line] == [
        "/usr/bin/upstream 8082"
    ]
    assert b"sh -c" not in ps


def test_the_upstream_honours_connection_close_and_http_1_0(run):
    _, ip = run(OF_WATCHDOG_IMAGE)
    for request_line, extra, answer in [
        (b"POST / HTTP/1.1", b"Connection: close\r\n", b"Connection: close\r\n"),
        (b"POST / HTTP/1.0", b"", b"Connection: close\r\n"),
    ]:
        with socket.create_connection((ip, UPSTREAM), timeout=10) as sock:
            sock.sendall(request_line + b"\r\nContent-Length: 2\r\n" + extra + b"\r\nhi")
            reply = b""
            while chunk := sock.recv(65536):  # ends because the upstream closes the connection
                reply += chunk
        head, body = reply.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and answer in head + b"\r\n" and body == b"hi"


def test_the_upstream_streams_a_long_output_chunked(run):
    _, ip = run(OF_WATCHDOG_IMAGE, {"handler": "head -c 3000000 /dev/zero; echo end"})
    for port in (UPSTREAM, 8080):
        status, headers, body = request(ip, "GET", "/", port=port)
        assert status == 200 and len(body) == 3000004 and body.endswith(b"\0end\n")
        if port == UPSTREAM:
            assert headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in headers


def test_the_upstream_cuts_a_stream_short_when_the_handler_fails_after_it_began(run):
    # Too late for a 500 once 1 MiB went out: the reply ends without its last chunk.
    _, ip = run(OF_WATCHDOG_IMAGE, {"handler": "head -c 3000000 /dev/zero; echo err >&2; exit 3"})
    with pytest.raises(http.client.IncompleteRead):
        request(ip, "GET", "/", port=UPSTREAM)


def test_the_upstream_stops_the_handler_when_the_client_goes_away(run):
    container, ip = run(OF_WATCHDOG_IMAGE, {"handler": "sleep 60"})
    with socket.create_connection((ip, UPSTREAM), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        deadline = time.monotonic() + 5
        while b"sleep 60" not in container.exec_run(["ps", "-o", "args"])[1]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    deadline = time.monotonic() + 5
    while b"sleep 60" in container.exec_run(["ps", "-o", "args"])[1]:
        assert time.monotonic() < deadline, "the handler outlived its call"
        time.sleep(0.05)


def test_of_watchdog_answers_many_concurrent_kept_alive_calls(run):
    # The old per-connection upstream (busybox nc) refused calls at 64 concurrent connections.
    _, ip = run(OF_WATCHDOG_IMAGE)
    failures = []

    def calls(n):
        conn = http.client.HTTPConnection(ip, 8080, timeout=20)
        try:
            for i in range(10):
                body = f"{n}-{i}".encode()
                conn.request("POST", "/", body=body)
                resp = conn.getresponse()
                got = (resp.status, resp.read())
                if got != (200, body):
                    failures.append(got)
        except OSError as exc:
            failures.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=calls, args=(n,)) for n in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
