"""Cross-site requests from a browser cannot change anything; other clients are not affected."""

from __future__ import annotations

import pytest

from app.web.crosssite import cross_site_reason
from tests.unit.helpers import deployment

# A JSON body labelled text/plain: what another site's form or fetch() can send without preflight.
SIMPLE = {"data": '{"service": "evil", "image": "docker.io/evil/miner:latest"}', "content_type": "text/plain"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost:8081"},
        {"Origin": "https://localhost"},
        {"Origin": "null"},
        {"Origin": "not an origin"},
    ],
)
def test_a_cross_site_deploy_is_403_and_deploys_nothing(client, engine, headers):
    response = client.post("/system/functions", headers=headers, **SIMPLE)
    assert response.status_code == 403
    assert response.mimetype == "text/plain"
    assert "cross-site" in response.get_data(as_text=True) or "origin" in response.get_data(as_text=True)
    assert engine.services == {}


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("put", "/system/functions", deployment()),
        ("delete", "/system/functions", {"functionName": "echo"}),
        ("post", "/system/scale-function/echo", {"replicas": 0}),
        ("post", "/system/secrets", {"name": "k", "value": "v"}),
        ("put", "/system/secrets", {"name": "k", "value": "v"}),
        ("delete", "/system/secrets", {"name": "k"}),
        ("post", "/system/alert", {"status": "firing", "receiver": "r", "alerts": []}),
    ],
)
def test_every_state_changing_route_is_guarded(client, engine, method, path, body):
    client.post("/system/functions", json=deployment())
    before = engine.service("echo")["Version"]
    response = getattr(client, method)(path, json=body, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert engine.service("echo")["Version"] == before and engine.secrets == {}


@pytest.mark.parametrize(
    "headers",
    [
        {},  # faas-cli, the SDKs, curl and Alertmanager send neither header
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "HTTP://LOCALHOST:80"},
    ],
)
def test_same_origin_and_non_browser_clients_may_deploy(client, headers):
    assert client.post("/system/functions", json=deployment(), headers=headers).status_code == 202


def test_reads_and_function_calls_are_not_guarded(client):
    client.post("/system/functions", json=deployment())
    cross = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    assert client.get("/system/functions", headers=cross).status_code == 200
    # A function needs no credentials: another site's page could call it directly anyway.
    assert client.post("/async-function/echo", data=b"x", headers=cross).status_code == 202


def test_the_refusal_comes_before_the_credentials_are_checked(app):
    response = app.test_client().post("/system/functions", headers={"Origin": "https://evil.example"}, **SIMPLE)
    assert response.status_code == 403


@pytest.mark.parametrize(
    "origin, scheme, host, refused",
    [
        ("http://gw.example:8080", "http", "gw.example:8080", False),
        ("https://gw.example", "https", "gw.example:443", False),
        ("http://gw.example:8080", "http", "gw.example", True),
        ("http://gw.example.evil.example:8080", "http", "gw.example:8080", True),
        ("http://[::1]:8080", "http", "[::1]:8080", False),
        ("http://gw.example:99999", "http", "gw.example:99999", True),
    ],
)
def test_origins_are_compared_by_scheme_host_and_port(origin, scheme, host, refused):
    assert (cross_site_reason("POST", {"Origin": origin}, scheme, host) is not None) is refused
