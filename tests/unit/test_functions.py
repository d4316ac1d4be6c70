"""Function CRUD, status, usage and instances through POST, PUT, DELETE and GET on /system/function(s)
(app.web.blueprints.functions), over the Swarm adapter and an in-memory Docker."""

from __future__ import annotations

import uuid

import pytest

from app import metrics
from app.domain.models import LABEL_SCALE_MIN
from tests.unit.helpers import deployment


def test_deploy_then_read_reports_what_the_client_sent(client, engine):
    assert client.post("/system/functions", json=deployment()).status_code == 202
    status = client.get("/system/function/echo").get_json()
    # Counted by the process-wide metrics, which other tests' calls to "echo" also feed (the count
    # itself is the next test's).
    assert isinstance(status.pop("invocationCount"), int)
    assert status == {
        "name": "echo",
        "image": "docker.io/functions/alpine:latest",
        "namespace": "openfaas-fn",
        "replicas": 1,
        "availableReplicas": 1,
        "envProcess": "cat",
        "labels": {"faas_function": "echo"},
        "annotations": {},
        "secrets": [],
        "constraints": [],
        "readOnlyRootFilesystem": False,
        "createdAt": engine.service("echo")["CreatedAt"],  # as Docker reports it
    }
    assert [{k: v for k, v in f.items() if k != "invocationCount"} for f in client.get("/system/functions").get_json()] == [
        status
    ]


def test_invocation_counts_come_from_the_metrics(client):
    # The metrics registry is shared by the whole session: a name of its own starts at zero.
    name = f"counted-{uuid.uuid4().hex[:8]}"
    assert client.post("/system/functions", json=deployment(name)).status_code == 202
    assert client.get(f"/system/function/{name}").get_json()["invocationCount"] == 0
    metrics.record_invocation(name, 200, 0.01)
    metrics.record_invocation(name, 500, 0.01)
    metrics.record_invocation(name, 202, 0.01)
    assert client.get(f"/system/function/{name}").get_json()["invocationCount"] == 3
    assert [f["invocationCount"] for f in client.get("/system/functions").get_json() if f["name"] == name] == [3]


def test_status_keeps_the_clients_spelling_of_every_field(client):
    body = deployment(
        envVars={"A": "1"},
        labels={"team": "x", "com.openfaas.scale.min": "2"},
        annotations={"topic": "t"},
        limits={"memory": "128Mi", "cpu": "500m"},
        requests={"memory": "64M"},
        constraints=["node.role == manager"],
        readOnlyRootFilesystem=True,
        network="func_functions",
        unknownKey={"ignored": True},
    )
    assert client.post("/system/functions", json=body).status_code == 202
    status = client.get("/system/function/echo").get_json()
    assert status["envVars"] == {"A": "1"}
    assert status["labels"] == {"team": "x", "com.openfaas.scale.min": "2", "faas_function": "echo"}
    assert status["annotations"] == {"topic": "t"}
    assert status["limits"] == {"memory": "128Mi", "cpu": "500m"}
    assert status["requests"] == {"memory": "64M"}
    assert status["constraints"] == ["node.role == manager"]
    assert status["readOnlyRootFilesystem"] is True
    assert status["replicas"] == 2


def test_availability_is_the_same_in_list_and_single_read(client):
    for name in ("a", "b", "c"):
        client.post("/system/functions", json=deployment(name))
    listed = {f["name"]: f["availableReplicas"] for f in client.get("/system/functions").get_json()}
    for name, available in listed.items():
        assert client.get(f"/system/function/{name}").get_json()["availableReplicas"] == available


def test_deploy_twice_is_409(client):
    client.post("/system/functions", json=deployment())
    response = client.post("/system/functions", json=deployment())
    assert response.status_code == 409
    assert "echo" in response.get_data(as_text=True)


def test_update_keeps_replicas_and_changes_image(client):
    client.post("/system/functions", json=deployment())
    client.post("/system/scale-function/echo", json={"serviceName": "echo", "replicas": 5})
    response = client.put("/system/functions", json=deployment(image="functions/alpine:2"))
    assert response.status_code == 200
    status = client.get("/system/function/echo").get_json()
    assert (status["image"], status["replicas"]) == ("functions/alpine:2", 5)


def test_update_raises_replicas_to_a_new_minimum(client):
    client.post("/system/functions", json=deployment())
    client.put("/system/functions", json=deployment(labels={"com.openfaas.scale.min": "3"}))
    assert client.get("/system/function/echo").get_json()["replicas"] == 3


@pytest.mark.parametrize("method", ["put", "delete"])
def test_unknown_function_is_404(client, method):
    body = deployment("ghost") if method == "put" else {"functionName": "ghost"}
    response = getattr(client, method)("/system/functions", json=body)
    assert response.status_code == 404
    assert "ghost" in response.get_data(as_text=True)
    assert client.get("/system/function/ghost").status_code == 404


def test_delete_removes(client):
    client.post("/system/functions", json=deployment())
    assert client.delete("/system/functions", json={"functionName": "echo"}).status_code == 200
    assert client.get("/system/functions").get_json() == []


@pytest.mark.parametrize(
    "override, field",
    [
        ({"service": "Bad_Name"}, "service"),
        ({"service": "a" * 64}, "service"),
        ({"service": 7}, "service"),
        ({"service": None}, "service"),
        ({"image": "Not A Ref"}, "image"),
        ({"image": ["x"]}, "image"),
        ({"envProcess": 3}, "envProcess"),
        ({"envVars": ["A=1"]}, "envVars"),
        ({"envVars": {"A": 1}}, "envVars.A"),
        ({"envVars": {"A=B": "1"}}, "envVars"),
        ({"constraints": "node.role == manager"}, "constraints"),
        ({"constraints": ["nonsense"]}, "constraints.0"),
        ({"secrets": ["bad/name"]}, "secrets.0"),
        ({"labels": {"a": 1}}, "labels.a"),
        ({"labels": {"com.openfaas.annotations.x": "1"}}, "com.openfaas.annotations.x"),
        ({"labels": {"com.openfaas.gateway.limits.memory": "1"}}, "com.openfaas.gateway.limits.memory"),
        ({"labels": {"faas_function": "other"}}, "faas_function"),
        ({"labels": {"com.openfaas.scale.min": "x"}}, "com.openfaas.scale.min"),
        ({"labels": {"com.openfaas.scale.min": "5", "com.openfaas.scale.max": "2"}}, "com.openfaas.scale.min"),
        ({"labels": {"com.openfaas.scale.factor": "101"}}, "com.openfaas.scale.factor"),
        ({"labels": {"com.openfaas.ready.http.periodSeconds": "0"}}, "com.openfaas.ready.http.periodSeconds"),
        ({"labels": {"com.openfaas.ready.http.path": "health"}}, "com.openfaas.ready.http.path"),
        ({"labels": {"com.openfaas.health.http.failureThreshold": "x"}}, "com.openfaas.health.http.failureThreshold"),
        ({"labels": {"com.openfaas.health.http.port": "8081"}}, "com.openfaas.health.http.port"),
        ({"annotations": []}, "annotations"),
        ({"annotations": {"topic": "cron-function", "schedule": "0 0 * * * *"}}, "annotation schedule"),
        ({"annotations": {"topic": "cron-function", "schedule": "@daily"}}, "annotation schedule"),
        ({"limits": {"memory": "lots"}}, "limits.memory"),
        ({"limits": {"memory": "1M"}}, "limits.memory"),
        ({"limits": {"cpu": "fast"}}, "limits.cpu"),
        ({"limits": {"cpu": "0"}}, "limits.cpu"),
        ({"requests": {"memory": "-5"}}, "requests.memory"),
        ({"limits": "128M"}, "limits"),
        ({"readOnlyRootFilesystem": "yes"}, "readOnlyRootFilesystem"),
        ({"registryAuth": "not base64!"}, "registryAuth"),
        ({"network": 5}, "network"),
        ({"namespace": "elsewhere"}, "elsewhere"),
    ],
)
def test_bad_deployments_are_400_naming_the_field(client, override, field):
    response = client.post("/system/functions", json=deployment(**override))
    assert response.status_code == 400, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert field in text
    assert response.mimetype == "text/plain"
    assert "Traceback" not in text


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b'"text"', b"", b"\xff\xfe"])
def test_bodies_that_are_not_json_objects_are_400(client, data):
    response = client.post("/system/functions", data=data, content_type="application/json")
    assert response.status_code == 400
    assert "JSON object" in response.get_data(as_text=True)


def test_missing_required_fields_are_named(client):
    text = client.post("/system/functions", json={}).get_data(as_text=True)
    assert "image" in text and "service" in text


def test_unknown_secret_is_404_naming_it(client):
    response = client.post("/system/functions", json=deployment(secrets=["api-key"]))
    assert response.status_code == 404
    assert "api-key" in response.get_data(as_text=True)


def test_bad_name_in_path_is_400(client):
    assert client.get("/system/function/Not_Valid").status_code == 400


def test_unknown_namespace_is_400(client):
    assert client.get("/system/functions?namespace=elsewhere").status_code == 400
    assert client.get("/system/functions?namespace=openfaas-fn").status_code == 200


@pytest.mark.parametrize("constraint", ["\f9ljJD5geis7 == x", "a==b", "node.role == ", "node.role == a==b", "node.role == ÿ"])
def test_constraints_swarm_would_refuse_are_400(client, constraint):
    # Found by fuzzing the stack: Docker refused these only after the request was accepted (500).
    body = {"service": "fn", "image": "fn:1", "constraints": [constraint]}
    response = client.post("/system/functions", json=body)
    assert response.status_code == 400 and "constraints.0" in response.text


def test_usage_on_the_status_when_asked_for(client, app, engine):
    client.post("/system/functions", json=deployment())
    assert "usage" not in client.get("/system/function/echo").get_json()
    sampler = app.extensions["openfaas"].usage
    sampler.sample()
    engine.cpu_usage[engine.running_tasks("echo")[0]["Status"]["ContainerStatus"]["ContainerID"]] += 10**9
    sampler.sample()
    usage = client.get("/system/function/echo?usage=1").get_json()["usage"]
    assert usage["cpu"] > 0 and usage["totalMemoryBytes"] == 1_941_504
    assert "usage" not in client.get("/system/function/echo?usage=false").get_json()
    (listed,) = client.get("/system/functions?usage=true").get_json()
    assert listed["usage"]["totalMemoryBytes"] == 1_941_504


@pytest.mark.parametrize("path", ["/system/function/echo?usage=maybe", "/system/functions?usage=2"])
def test_a_bad_usage_flag_is_a_400_naming_it(client, path):
    client.post("/system/functions", json=deployment())
    response = client.get(path)
    assert response.status_code == 400 and "usage" in response.get_data(as_text=True)


def test_instances_route(client, engine):
    client.post("/system/functions", json=deployment(labels={LABEL_SCALE_MIN: "2"}))
    instances = client.get("/system/function/echo/instances").get_json()
    assert [i["id"] for i in instances] == [t["ID"] for t in engine.running_tasks("echo")]
    assert set(instances[0]) == {
        "id", "name", "namespace", "slot", "node", "state", "desiredState", "health", "startedAt", "exitCode",
        "error", "cpu", "memoryBytes", "networkRxBytes", "networkTxBytes", "blockReadBytes", "blockWriteBytes",
        "unmeasured", "ready"}
    assert instances[0]["health"] == {"status": "none", "failingStreak": 0, "lastOutput": None}
    assert instances[0]["cpu"] == -1 and instances[0]["blockReadBytes"] == 0
    assert client.get("/system/function/ghost/instances").status_code == 404
    assert client.get("/system/function/echo/instances?namespace=elsewhere").status_code == 400
