"""Integration tests for the offline-built classic-watchdog test image
(images/watchdog). Needs a local docker daemon; builds the image itself."""

import http.client
import os
import secrets
import socket
import subprocess
import threading
import time
from pathlib import Path

import docker
import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "images" / "watchdog" / "build.sh"
IMAGE = "faas-test/watchdog:latest"
PREFIX = "wdtest-"


@pytest.fixture(scope="module")
def client():
    c = docker.from_env()
    yield c
    c.close()


@pytest.fixture(scope="module")
def image(client):
    out = subprocess.run(
        [str(BUILD), IMAGE], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == IMAGE
    return IMAGE


@pytest.fixture
def run(client, image):
    """Start a container and return (container, ip) once port 8080 accepts;
    every container is force-removed at teardown, whatever happened."""
    created = []

    def _run(env=None, **kwargs):
        container = client.containers.run(
            image,
            name=PREFIX + secrets.token_hex(4),
            environment=env or {},
            detach=True,
            **kwargs,
        )
        created.append(container)
        container.reload()
        ip = container.attrs["NetworkSettings"]["IPAddress"]
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((ip, 8080), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return container, ip

    yield _run
    for container in created:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass


def request(ip, method, path, body=None, headers=None, **kwargs):
    conn = http.client.HTTPConnection(ip, 8080, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {}, **kwargs)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def env_of(body):
    return dict(line.split("=", 1) for line in body.decode().splitlines() if "=" in line)


def test_get_path_and_query(run):
    _, ip = run({"fprocess": "env"})
    status, headers, body = request(ip, "GET", "/some/path?a=1&b=two")
    assert status == 200
    assert headers["Content-Type"] == "text/plain"
    assert int(headers["Content-Length"]) == len(body)
    env = env_of(body)
    assert env["Http_Method"] == "GET"
    assert env["Http_Path"] == "/some/path"
    assert env["Http_Query"] == "a=1&b=two"


def test_no_query_is_empty(run):
    _, ip = run({"fprocess": "env"})
    env = env_of(request(ip, "GET", "/plain")[2])
    assert env["Http_Path"] == "/plain"
    assert env["Http_Query"] == ""


def test_header_exported(run):
    _, ip = run({"fprocess": "env"})
    headers = {"X-Call-Id": "abc", "content-type": "application/json"}
    env = env_of(request(ip, "POST", "/", body=b"{}", headers=headers)[2])
    assert env["Http_X_Call_Id"] == "abc"
    assert env["Http_Content_Type"] == "application/json"
    assert env["Http_Method"] == "POST"


def test_post_echo(run):
    _, ip = run({"fprocess": "cat"})
    status, _, body = request(ip, "POST", "/", body=b"hello world\n")
    assert (status, body) == (200, b"hello world\n")


def test_post_binary_1mb(run):
    _, ip = run({"fprocess": "cat"})
    payload = os.urandom(1024 * 1024) + b"\0\0\0tail\0"
    status, headers, body = request(ip, "POST", "/", body=payload)
    assert status == 200
    assert int(headers["Content-Length"]) == len(payload)
    assert body == payload


def test_chunked_request_body(run):
    _, ip = run({"fprocess": "cat"})
    parts = [b"first,", b"\0second\r\n,", os.urandom(70000), b"last"]
    status, _, body = request(ip, "POST", "/", body=iter(parts), encode_chunked=True)
    assert status == 200
    assert body == b"".join(parts)


def test_nonzero_exit_is_500(run):
    _, ip = run({"fprocess": "echo out; echo err >&2; exit 3"})
    status, _, body = request(ip, "GET", "/")
    assert status == 500
    assert body == b"out\nerr\n"


def test_content_type_env(run):
    _, ip = run({"fprocess": "echo {}", "content_type": "application/json"})
    status, headers, body = request(ip, "GET", "/")
    assert (status, headers["Content-Type"], body) == (200, "application/json", b"{}\n")


def test_head_has_no_body(run):
    _, ip = run({"fprocess": "echo hello"})
    status, headers, body = request(ip, "HEAD", "/")
    assert status == 200
    assert headers["Content-Length"] == "6"
    assert body == b""


def test_concurrent_requests(run):
    _, ip = run({"fprocess": "sleep 1; echo ok"})
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


def test_readonly_rootfs_as_nobody(run):
    _, ip = run(
        {"fprocess": "id -un; cat"},
        read_only=True,
        tmpfs={"/tmp": "rw,mode=1777"},
        user="nobody",
    )
    status, _, body = request(ip, "POST", "/", body=b"x")
    assert (status, body) == (200, b"nobody\nx")


def test_logs_and_fast_stop(run):
    container, ip = run({"log_interval": "1"})
    request(ip, "GET", "/logged?q=1")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logs = container.logs().decode()
        if "tick 2" in logs:
            break
        time.sleep(0.2)
    assert "tick 1" in logs and "tick 2" in logs
    assert "request GET /logged" in logs
    start = time.monotonic()
    container.stop(timeout=10)
    assert time.monotonic() - start < 2
