"""Invoking functions through nginx and gunicorn, with the watchdog test image on Swarm."""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
from urllib.parse import urlsplit

import pytest

from tests.gateway import basic_auth, call
from tests.integration.conftest import shared_name, wait_for


def _auth(stack) -> dict[str, str]:
    return basic_auth(stack.user, stack.password)


def _deploy(stack, fn: str, fprocess: str) -> None:
    body = {"service": fn, "image": "faas-test/watchdog:latest", "envProcess": fprocess}
    status, text, _ = call(f"{stack.url}/system/functions", "POST", body, _auth(stack))
    assert status == 202, text

    def ready():
        return json.loads(call(f"{stack.url}/system/function/{fn}", headers=_auth(stack))[1])["availableReplicas"] >= 1

    wait_for(ready, timeout=90, what=f"{fn} to be available")


@pytest.fixture(scope="module")
def env_fn(stack, watchdog_image):
    fn = shared_name("env")
    _deploy(stack, fn, "env")
    return fn


def invoke(stack, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    parts = urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_method_path_and_query_reach_the_function(stack, env_fn, method):
    status, headers, body = invoke(stack, f"/function/{env_fn}/some/path?a=1&b=two", method, b"x")
    assert status == 200, body
    env = body.decode()
    assert f"Http_Method={method}" in env
    assert "Http_Path=/some/path" in env
    assert "Http_Query=a=1&b=two" in env
    assert headers["X-Call-Id"] and f"Http_X_Call_Id={headers['X-Call-Id']}" in env
    assert "Http_X_Forwarded_For=" in env and "Http_X_Forwarded_Host=" in env


def test_head_has_no_body(stack, env_fn):
    status, _, body = invoke(stack, f"/function/{env_fn}", "HEAD")
    assert status == 200 and body == b""


def test_unknown_function_is_a_proxy_404(stack):
    status, headers, _ = invoke(stack, "/function/no-such-function-here")
    assert status == 404 and headers["X-OpenFaaS-Internal"] == "proxy"


def _gateway_peak_rss_kib(stack) -> int:
    """The largest peak RSS of the gateway's gunicorn processes (VmHWM), in KiB."""
    container = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={stack.env['COMPOSE_PROJECT_NAME']}",
         "--filter", "label=com.docker.compose.service=gateway"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[0]
    status = subprocess.run(
        ["docker", "exec", container, "sh", "-c", "cat /proc/[0-9]*/status"], capture_output=True, text=True, check=True
    ).stdout
    return max(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


def test_100_mb_streams_through_with_flat_gateway_memory(stack, watchdog_image):
    upload, download = shared_name("wc"), shared_name("zeros")
    _deploy(stack, upload, "wc -c")
    _deploy(stack, download, "head -c 100000000 /dev/zero")
    before = _gateway_peak_rss_kib(stack)
    data = b"\x00\x01" * 50_000_000
    status, _, body = invoke(stack, f"/function/{upload}", "POST", data)
    assert status == 200 and body.strip() == b"100000000"
    status, _, body = invoke(stack, f"/function/{download}")
    assert status == 200 and len(body) == 100_000_000 and hashlib.sha256(body).hexdigest() == hashlib.sha256(
        bytes(100_000_000)
    ).hexdigest()
    grown = _gateway_peak_rss_kib(stack) - before
    assert grown < 30 * 1024, f"the gateway's peak memory grew by {grown} KiB"


def test_slow_function_is_a_proxy_504(stack, watchdog_image):
    fn = shared_name("slow")
    _deploy(stack, fn, "sleep 8; echo late")
    status, headers, body = invoke(stack, f"/function/{fn}")
    assert status == 504, body
    assert headers["X-OpenFaaS-Internal"] == "proxy"


def test_scale_from_zero(stack, watchdog_image):
    fn = shared_name("zero")
    _deploy(stack, fn, "echo awake")
    scale = {"serviceName": fn, "replicas": 0}
    assert call(f"{stack.url}/system/scale-function/{fn}", "POST", scale, _auth(stack))[0] == 202

    def asleep():
        # No container left at all: a task shutting down can still answer for a moment.
        containers = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={fn}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        status = json.loads(call(f"{stack.url}/system/function/{fn}", headers=_auth(stack))[1])
        return status["replicas"] == 0 and not containers

    wait_for(asleep, timeout=60, what=f"{fn} to scale to zero")
    status, _, body = invoke(stack, f"/function/{fn}")
    assert (status, body) == (200, b"awake\n")
    assert json.loads(call(f"{stack.url}/system/function/{fn}", headers=_auth(stack))[1])["replicas"] == 1


def test_metrics_count_calls_across_workers(stack, env_fn):
    before = json.loads(call(f"{stack.url}/system/function/{env_fn}", headers=_auth(stack))[1])["invocationCount"]
    for _ in range(12):  # the stack runs two gunicorn workers: calls land on both
        assert invoke(stack, f"/function/{env_fn}")[0] == 200
    status = json.loads(call(f"{stack.url}/system/function/{env_fn}", headers=_auth(stack))[1])
    assert status["invocationCount"] == before + 12
    _, _, text = invoke(stack, "/metrics")
    line = f'gateway_function_invocation_total{{code="200",function_name="{env_fn}"}}'
    (sample,) = [row for row in text.decode().splitlines() if row.startswith(line)]
    assert float(sample.split()[-1]) == before + 12
    assert "gateway_functions_seconds_bucket" in text.decode()


def test_alerts_scale_up_and_back_down(stack, watchdog_image):
    fn = shared_name("alerted")
    body = {"service": fn, "image": watchdog_image, "labels": {"com.openfaas.scale.max": "4", "com.openfaas.scale.factor": "50"}}
    assert call(f"{stack.url}/system/functions", "POST", body, _auth(stack))[0] == 202

    def alert(status: str) -> int:
        webhook = {
            "status": status,
            "receiver": "scale-up",
            "alerts": [{"status": status, "labels": {"alertname": "APIHighInvocationRate", "function_name": fn}}],
        }
        return call(f"{stack.url}/system/alert", "POST", webhook, _auth(stack))[0]

    def replicas() -> int:
        return json.loads(call(f"{stack.url}/system/function/{fn}", headers=_auth(stack))[1])["replicas"]

    assert alert("firing") == 200 and replicas() == 3  # 1 + ceil(4 / 100 * 50)
    assert alert("firing") == 200 and replicas() == 4  # capped at the maximum
    assert alert("resolved") == 200 and replicas() == 1  # back to the minimum
