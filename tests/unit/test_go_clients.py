"""What Go clients (faas-cli, openfaas/go-sdk, SDKs written from the published API) really send.

Go writes a field nobody set as its zero value: "" for a string, null for a nil slice or map,
false for a bool. Each of those in an optional field means the field is absent, on every route;
a value that is present and wrong stays a 400 naming the field.
"""

from __future__ import annotations

import pytest

from tests.unit.helpers import deployment

# A go-sdk deploy of a function with only a memory limit and one env var and annotation set.
GO_DEPLOYMENT = deployment(
    network="",
    registryAuth="",
    namespace="",
    envProcess="",
    limits={"memory": "64M", "cpu": ""},
    requests={"memory": "", "cpu": ""},
    constraints=None,
    secrets=None,
    labels=None,
    readOnlyRootFilesystem=False,
    envVars={"a": ""},
    annotations={"topics": ""},
)


@pytest.mark.parametrize("method", ["post", "put"])
def test_a_go_deployment_with_zero_values_is_accepted_as_if_they_were_absent(client, engine, method):
    if method == "put":
        client.post("/system/functions", json=deployment())
    response = getattr(client, method)("/system/functions", json=GO_DEPLOYMENT)
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    status = client.get("/system/function/echo").get_json()
    assert status["limits"] == {"memory": "64M"}
    assert "requests" not in status
    # An empty envProcess leaves the image's own process; values inside maps are kept as sent.
    assert "envProcess" not in status
    assert status["envVars"] == {"a": ""}
    assert status["annotations"] == {"topics": ""}
    assert status["namespace"] == "openfaas-fn"
    spec = engine.service("echo")["Spec"]["TaskTemplate"]
    assert spec["Resources"]["Limits"] == {"MemoryBytes": 64 * 1024 * 1024}
    assert "Reservations" not in spec["Resources"]
    assert [n["Target"] for n in spec["Networks"]] == ["func_functions"]


@pytest.mark.parametrize(
    "override, field",
    [
        ({"limits": {"memory": "64M", "cpu": "fast"}}, "limits.cpu"),
        ({"requests": {"memory": " ", "cpu": ""}}, "requests.memory"),
        ({"network": 0}, "network"),
        ({"service": ""}, "service"),
        ({"image": ""}, "image"),
        ({"namespace": "elsewhere"}, "elsewhere"),
    ],
)
def test_present_and_wrong_is_still_a_400_naming_the_field(client, override, field):
    response = client.post("/system/functions", json={**GO_DEPLOYMENT, **override})
    assert response.status_code == 400
    assert field in response.get_data(as_text=True)


def test_scale_with_the_name_only_in_the_path(client):
    client.post("/system/functions", json=deployment())
    # A client written from the published API sends "service"; the path names the function.
    for body in ({"service": "echo", "replicas": 2}, {"replicas": 3}, {"serviceName": "", "namespace": "", "replicas": 4}):
        assert client.post("/system/scale-function/echo", json=body).status_code == 202
        assert client.get("/system/function/echo").get_json()["replicas"] == body["replicas"]


@pytest.mark.parametrize("field", ["serviceName", "service"])
def test_scale_naming_another_function_in_the_body_is_a_400(client, field):
    client.post("/system/functions", json=deployment())
    response = client.post("/system/scale-function/echo", json={field: "other", "replicas": 2})
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith(f"Invalid {field}: 'other'")


@pytest.mark.parametrize(
    "method, body",
    [
        ("post", {"name": "api-key", "value": "v", "rawValue": "", "namespace": ""}),
        ("post", {"name": "api-key", "value": "", "rawValue": "dg==", "namespace": None}),
    ],
)
def test_secrets_with_zero_values(client, engine, method, body):
    assert getattr(client, method)("/system/secrets", json=body).status_code == 201
    assert engine.secret_value("api-key-v1") == b"v"
    assert client.put("/system/secrets", json={**body, "namespace": ""}).status_code == 200
    removed = client.delete("/system/secrets", json={"name": "api-key", "namespace": ""})
    assert (removed.status_code, removed.data) == (200, b"")


def test_delete_with_an_empty_namespace(client):
    client.post("/system/functions", json=deployment())
    assert client.delete("/system/functions", json={"functionName": "echo", "namespace": ""}).status_code == 200


@pytest.mark.parametrize("route", ["/system/functions", "/system/secrets", "/system/function/echo"])
def test_an_empty_namespace_query_is_the_default(client, route):
    client.post("/system/functions", json=deployment())
    assert client.get(f"{route}?namespace=").status_code == 200


@pytest.mark.parametrize(
    "query, expected",
    [
        # go-sdk's GetLogs always sends follow, as 0 or 1, and tail and since even when unset.
        ("name=echo&follow=0&tail=0&since=", (False, None, None)),
        ("name=echo&follow=1&tail=&since=&instance=&namespace=", (True, None, None)),
        ("name=echo&follow=", (False, None, None)),
        ("name=echo", (False, None, None)),
        ("name=echo&follow=true&tail=3", (True, 3, None)),
    ],
)
def test_log_queries_as_go_clients_send_them(client, logs, query, expected):
    client.post("/system/functions", json=deployment())
    assert client.get(f"/system/logs?{query}").status_code == 200
    request, _ = logs.opened[-1]
    assert (request.follow, request.tail, request.since) == expected
    assert request.instance is None


@pytest.mark.parametrize("route", ["/system/functions", "/system/function/echo"])
def test_an_empty_usage_query_is_no_usage(client, route):
    client.post("/system/functions", json=deployment())
    response = client.get(f"{route}?usage=")
    assert response.status_code == 200
    statuses = response.json if isinstance(response.json, list) else [response.json]
    assert all("usage" not in status for status in statuses)


def test_namespace_bodies_with_nil_maps(client):
    created = client.post("/system/namespace/", json={"name": "team-a", "labels": None, "annotations": None})
    assert created.status_code == 201
    updated = client.put("/system/namespace/team-a", json={"name": "team-a", "labels": None, "annotations": None})
    assert updated.status_code == 200
    assert client.get("/system/namespace/team-a").json == {"name": "team-a", "labels": {}, "annotations": {}}
