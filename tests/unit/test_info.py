"""GET /system/info (app.web.blueprints.info), and the namespace list a client reads beside it."""

from __future__ import annotations


def test_namespaces_and_info(client):
    assert client.get("/system/namespaces").get_json() == ["openfaas-fn"]
    info = client.get("/system/info").get_json()
    assert info["provider"]["orchestration"] == "swarm"
    assert set(info["version"]) == {"sha", "release"}
    assert info["arch"]
