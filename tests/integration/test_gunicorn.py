"""The gateway as users run it: gunicorn with gevent workers over real HTTP, against Swarm."""

from __future__ import annotations

import json

import pytest

from tests.gateway import call
from tests.swarm import name


@pytest.fixture(scope="module")
def gateway(start_gateway) -> str:
    return start_gateway(workers="2").url


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


def test_gunicorn_refuses_oversized_headers_with_431(gateway):
    # Without nginx in front, gunicorn's own limits (gunicorn.conf.py) hold: 8190 bytes a header.
    status, _, _ = call(f"{gateway}/healthz", headers={"X-Big": "a" * 9000})
    assert status == 431
    assert call(f"{gateway}/healthz", headers={"X-Fits": "a" * 8000})[0] == 200


def test_a_gateway_keeps_its_files_in_its_own_state_folder(start_gateway, tmp_path):
    # A metrics folder in the environment (another gunicorn's, say) is not shared: gunicorn.conf.py
    # always uses the one inside this gateway's state folder.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    gateway = start_gateway(workers="1", PROMETHEUS_MULTIPROC_DIR=str(elsewhere))
    assert call(f"{gateway.url}/system/functions")[0] == 200
    metrics = gateway.state_dir / "metrics"
    assert list(metrics.glob("counter_*.db")) and metrics.stat().st_mode & 0o077 == 0
    assert (gateway.state_dir / "queue.db").is_file()
    assert list(elsewhere.iterdir()) == []
