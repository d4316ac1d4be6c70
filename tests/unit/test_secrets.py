"""Secrets through the HTTP layer, over the Swarm adapter and an in-memory Docker."""

from __future__ import annotations

import base64

import pytest

from tests.unit.helpers import deployment


def test_secret_lifecycle(client, engine):
    assert client.post("/system/secrets", json={"name": "api-key", "value": "v1"}).status_code == 201
    assert client.get("/system/secrets").get_json() == [{"name": "api-key"}]
    assert client.put("/system/secrets", json={"name": "api-key", "value": "v2"}).status_code == 200
    assert engine.secret_value("api-key-v2") == b"v2"
    removed = client.delete("/system/secrets", json={"name": "api-key"})
    # 200 with no body: faas-cli and the Go SDK refuse the 204 of the published document.
    assert (removed.status_code, removed.data) == (200, b"")
    assert client.get("/system/secrets").get_json() == []


def test_raw_value_is_base64(client, engine):
    raw = bytes(range(256))
    client.post("/system/secrets", json={"name": "blob", "rawValue": base64.b64encode(raw).decode()})
    assert engine.secret_value("blob-v1") == raw


def test_values_never_come_back(client):
    client.post("/system/secrets", json={"name": "api-key", "value": "hunter2"})
    assert "hunter2" not in client.get("/system/secrets").get_data(as_text=True)


def test_update_rolls_functions_onto_the_new_version(client, engine):
    client.post("/system/secrets", json={"name": "api-key", "value": "v1"})
    client.post("/system/functions", json=deployment(secrets=["api-key"]))
    client.put("/system/secrets", json={"name": "api-key", "value": "v2"})
    mount = engine.service("echo")["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"][0]
    assert mount["SecretName"] == "api-key-v2"
    assert client.get("/system/function/echo").get_json()["secrets"] == ["api-key"]


def test_delete_in_use_is_409_naming_functions(client):
    client.post("/system/secrets", json={"name": "api-key", "value": "v1"})
    client.post("/system/functions", json=deployment("fn-a", secrets=["api-key"]))
    client.post("/system/functions", json=deployment("fn-b", secrets=["api-key"]))
    response = client.delete("/system/secrets", json={"name": "api-key"})
    assert response.status_code == 409
    assert "fn-a" in response.get_data(as_text=True) and "fn-b" in response.get_data(as_text=True)


def test_create_twice_is_409(client):
    client.post("/system/secrets", json={"name": "api-key", "value": "v1"})
    assert client.post("/system/secrets", json={"name": "api-key", "value": "v1"}).status_code == 409


@pytest.mark.parametrize("method", ["put", "delete"])
def test_unknown_secret_is_404(client, method):
    response = getattr(client, method)("/system/secrets", json={"name": "ghost", "value": "x"})
    assert response.status_code == 404
    assert "ghost" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"value": "x"}, "name"),
        ({"name": "bad/name", "value": "x"}, "name"),
        ({"name": "s"}, "value"),
        ({"name": "s", "value": ""}, "value"),
        ({"name": "s", "value": 5}, "value"),
        ({"name": "s", "value": "a", "rawValue": "YQ=="}, "value"),
        ({"name": "s", "rawValue": "%%%"}, "rawValue"),
        ({"name": "s", "value": "x" * 600_000}, "value"),
        ({"name": "s", "value": "x", "namespace": "elsewhere"}, "elsewhere"),
    ],
)
def test_bad_secret_bodies_are_400_naming_the_field(client, body, field):
    response = client.post("/system/secrets", json=body)
    assert response.status_code == 400
    assert field in response.get_data(as_text=True)
    if isinstance(body.get("value"), str) and len(body["value"]) > 3:
        assert body["value"] not in response.get_data(as_text=True)
