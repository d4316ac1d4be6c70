"""POST /system/scale-function/ (app.web.blueprints.scale): zero allowed, a set maximum honoured,
bad requests named."""

from __future__ import annotations

import pytest

from tests.unit.helpers import deployment


def test_scale_accepts_zero_and_honours_a_set_maximum(client):
    client.post("/system/functions", json=deployment(labels={"com.openfaas.scale.max": "4"}))
    assert client.post("/system/scale-function/echo", json={"serviceName": "echo", "replicas": 0}).status_code == 202
    assert client.get("/system/function/echo").get_json()["replicas"] == 0
    client.post("/system/scale-function/echo", json={"serviceName": "echo", "replicas": 9})
    assert client.get("/system/function/echo").get_json()["replicas"] == 4


def test_scale_without_a_set_maximum_is_not_capped_at_the_default(client):
    client.post("/system/functions", json=deployment())
    client.post("/system/scale-function/echo", json={"serviceName": "echo", "replicas": 25})
    assert client.get("/system/function/echo").get_json()["replicas"] == 25


@pytest.mark.parametrize(
    "body, field",
    [
        ({"serviceName": "other", "replicas": 1}, "serviceName"),
        ({"serviceName": "echo", "replicas": -1}, "replicas"),
        ({"serviceName": "echo", "replicas": 1.5}, "replicas"),
        ({"serviceName": "echo", "replicas": "2"}, "replicas"),
        ({"serviceName": "echo", "replicas": True}, "replicas"),
        ({"serviceName": "echo", "replicas": 100000}, "replicas"),
        ({"serviceName": "echo"}, "replicas"),
        ({"serviceName": "echo", "replicas": 1, "namespace": "elsewhere"}, "elsewhere"),
    ],
)
def test_bad_scale_requests_are_400_naming_the_field(client, body, field):
    client.post("/system/functions", json=deployment())
    response = client.post("/system/scale-function/echo", json=body)
    assert response.status_code == 400
    assert field in response.get_data(as_text=True)


def test_scale_unknown_function_is_404(client):
    response = client.post("/system/scale-function/ghost", json={"serviceName": "ghost", "replicas": 1})
    assert response.status_code == 404
