"""The gateway as users run it: gunicorn with gevent workers over real HTTP, against Swarm."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.integration.conftest import PASSWORD, ROOT, USER, name

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gateway(docker_api):
    port = _free_port()
    env = {**os.environ, "basic_auth_user": USER, "basic_auth_password": PASSWORD, "workers": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start:\n" + process.stdout.read().decode(errors="replace"))
                time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={**AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def test_health_and_auth_over_http(gateway):
    status, body, _ = call(f"{gateway}/healthz", headers={"Authorization": ""})
    assert (status, body) == (200, b"OK\n")
    status, _, headers = call(f"{gateway}/system/functions", headers={"Authorization": ""})
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="OpenFaaS"'
    assert call(f"{gateway}/system/info")[0] == 200


def test_deploy_read_delete_over_http(gateway, watchdog_image):
    fn = name("http")
    status, body, _ = call(f"{gateway}/system/functions", "POST", {"service": fn, "image": watchdog_image})
    assert status == 202, body
    status, body, headers = call(f"{gateway}/system/function/{fn}")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["name"] == fn
    status, body, headers = call(f"{gateway}/system/functions", "POST", {"service": fn, "image": 5})
    assert status == 400 and b"image" in body and headers["Content-Type"].startswith("text/plain")
    assert call(f"{gateway}/system/functions", "DELETE", {"functionName": fn})[0] == 200
