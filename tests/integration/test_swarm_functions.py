"""Function lifecycle against the real Swarm with the watchdog test image."""

from __future__ import annotations

import base64

import pytest

from app.config import Config
from app.runtime.swarm.assembly import swarm_runtime
from tests.swarm import name, wait_available
from tests.waiting import wait_for


def _containers(docker_api, service: str) -> list[dict]:
    return docker_api.containers(filters={"label": f"com.docker.swarm.service.name={service}"})


def test_deploy_update_scale_delete(client, docker_api, watchdog_image):
    fn = name("life")
    body = {
        "service": fn,
        "image": watchdog_image,
        "envProcess": "cat",
        "envVars": {"GREETING": "hi"},
        "labels": {"team": "qa", "com.openfaas.scale.max": "5"},
        "annotations": {"topic": "orders"},
        "limits": {"memory": "64Mi", "cpu": "0.5"},
        "requests": {"memory": "16M", "cpu": "100m"},
        "readOnlyRootFilesystem": True,
    }
    response = client.post("/system/functions", json=body)
    assert response.status_code == 202, response.get_data(as_text=True)
    status = wait_available(client, fn, 1)
    assert status["image"] == watchdog_image
    assert status["limits"] == {"memory": "64Mi", "cpu": "0.5"}
    assert status["constraints"] == [] and status["secrets"] == []
    assert status["labels"] == {"team": "qa", "com.openfaas.scale.max": "5", "faas_function": fn}
    assert status["annotations"] == {"topic": "orders"}

    service = docker_api.inspect_service(fn)
    spec = service["Spec"]
    network = docker_api.inspect_network("func_functions")
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    assert spec["TaskTemplate"]["Networks"] == [{"Target": network["Id"]}]
    assert network["Labels"].get("openfaas") == "true" and network["Attachable"]
    assert spec["UpdateConfig"]["Order"] == "start-first"
    assert spec["TaskTemplate"]["Resources"]["Limits"] == {"MemoryBytes": 64 * 2**20, "NanoCPUs": 500_000_000}
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.platform.os == linux"]
    (container,) = _containers(docker_api, fn)
    assert container["Labels"]["com.openfaas.function"] == fn
    assert container["Labels"]["faas_function"] == fn
    # Read-only root with a writable /tmp, as the contract promises.
    denied = docker_api.exec_start(docker_api.exec_create(container["Id"], ["sh", "-c", "touch /x || echo denied"])["Id"])
    allowed = docker_api.exec_start(docker_api.exec_create(container["Id"], ["sh", "-c", "touch /tmp/x && echo ok"])["Id"])
    assert b"denied" in denied and b"ok" in allowed
    env = docker_api.exec_start(docker_api.exec_create(container["Id"], ["env"])["Id"]).decode()
    assert "fprocess=cat" in env and "GREETING=hi" in env

    assert client.post(f"/system/scale-function/{fn}", json={"serviceName": fn, "replicas": 3}).status_code == 202
    wait_available(client, fn, 3)

    body["envVars"] = {"GREETING": "hello"}
    assert client.put("/system/functions", json=body).status_code == 200
    status = wait_available(client, fn, 3, timeout=120)
    assert status["envVars"] == {"GREETING": "hello"}
    assert docker_api.inspect_service(fn)["Spec"]["Mode"]["Replicated"]["Replicas"] == 3

    client.post(f"/system/scale-function/{fn}", json={"serviceName": fn, "replicas": 0})
    wait_available(client, fn, 0)
    wait_for(lambda: not _containers(docker_api, fn), what="containers to stop")
    client.post(f"/system/scale-function/{fn}", json={"serviceName": fn, "replicas": 9})
    status = wait_available(client, fn, 5)  # the label caps the maximum at 5

    listed = {f["name"]: f for f in client.get("/system/functions").get_json()}
    assert listed[fn]["availableReplicas"] == status["availableReplicas"]

    assert client.delete("/system/functions", json={"functionName": fn}).status_code == 200
    assert client.get(f"/system/function/{fn}").status_code == 404
    assert not [s for s in docker_api.services() if s["Spec"]["Name"] == fn]


def test_a_listing_asks_docker_for_the_tasks_alone_whatever_the_number_of_functions(client, runtime, watchdog_image,
                                                                                    monkeypatch):
    calls = []
    original = runtime.functions.client.api.send

    def counting_send(request, **kwargs):
        calls.append(request.path_url.split("?")[0])
        return original(request, **kwargs)

    def ours(functions: list[dict]) -> int:
        return len([f for f in functions if f["name"].startswith(name(""))])

    monkeypatch.setattr(runtime.functions.client.api, "send", counting_send)
    for count in (1, 4):
        while (listed := ours(client.get("/system/functions").get_json())) < count:
            fn = name(f"n{listed}")
            assert client.post("/system/functions", json={"service": fn, "image": watchdog_image}).status_code == 202

        def only_tasks_asked() -> bool:
            # The services come from the cache, kept while Docker's events say nothing changed
            # (app/runtime/swarm/service_cache.py); its own /events stream is not a listing.
            calls.clear()
            assert ours(client.get("/system/functions").get_json()) == count
            return [path for path in calls if not path.endswith("/events")] == ["/v1.41/tasks"]

        wait_for(only_tasks_asked, timeout=10, what=f"a list of {count} to ask for the tasks alone")


def test_deploy_conflict_and_unknown_secret(client, watchdog_image):
    fn = name("dup")
    assert client.post("/system/functions", json={"service": fn, "image": watchdog_image}).status_code == 202
    response = client.post("/system/functions", json={"service": fn, "image": watchdog_image})
    assert response.status_code == 409 and fn in response.get_data(as_text=True)
    body = {"service": name("nosec"), "image": watchdog_image, "secrets": [name("ghost")]}
    missing = client.post("/system/functions", json=body)
    assert missing.status_code == 404 and name("ghost") in missing.get_data(as_text=True)
    bad_network = client.post(
        "/system/functions", json={"service": name("nonet"), "image": watchdog_image, "network": name("no-such-net")}
    )
    assert bad_network.status_code in (400, 404)
    assert name("no-such-net") in bad_network.get_data(as_text=True)


def test_registry_auth_is_accepted_and_never_reported(client, watchdog_image):
    fn = name("auth")
    auth = base64.b64encode(b"robot:registry-password-123").decode()
    body = {"service": fn, "image": watchdog_image, "registryAuth": auth}
    assert client.post("/system/functions", json=body).status_code == 202
    text = client.get(f"/system/function/{fn}").get_data(as_text=True)
    assert "registry-password-123" not in text and auth not in text


@pytest.fixture
def foreign(docker_api, watchdog_image):
    """A service and a secret made directly with Docker, not by the gateway."""
    service = docker_api.create_service({"ContainerSpec": {"Image": watchdog_image}}, name=name("foreign"))
    docker_api.create_secret(name("foreign-v1"), b"not ours")
    # swarm_cleanup removes both afterwards: they carry the run's prefix.
    return name("foreign"), service["ID"]


def test_objects_without_openfaas_labels_are_never_touched(client, docker_api, foreign):
    fn, service_id = foreign
    before = docker_api.inspect_service(service_id)["Version"]["Index"]
    assert fn not in [f["name"] for f in client.get("/system/functions").get_json()]
    assert client.get(f"/system/function/{fn}").status_code == 404
    assert client.put("/system/functions", json={"service": fn, "image": "x"}).status_code == 404
    assert client.post(f"/system/scale-function/{fn}", json={"serviceName": fn, "replicas": 0}).status_code == 404
    assert client.delete("/system/functions", json={"functionName": fn}).status_code == 404
    taken = client.post("/system/functions", json={"service": fn, "image": "x"})
    assert taken.status_code == 409 and "not an OpenFaaS function" in taken.get_data(as_text=True)

    assert name("foreign-v1") not in [s["name"] for s in client.get("/system/secrets").get_json()]
    assert client.put("/system/secrets", json={"name": name("foreign-v1"), "value": "x"}).status_code == 404
    assert client.delete("/system/secrets", json={"name": name("foreign-v1")}).status_code == 404
    # Our first version of secret "<prefix>-foreign" would be named like the foreign secret.
    assert client.post("/system/secrets", json={"name": fn, "value": "x"}).status_code == 409

    assert docker_api.inspect_service(service_id)["Version"]["Index"] == before
    assert [s for s in docker_api.secrets() if s["Spec"]["Name"] == name("foreign-v1")]


def test_start_creates_a_missing_functions_network(docker_api):
    network = name("functions")
    config = Config(basic_auth=False, functions_network=network)
    swarm_runtime(config).health.prepare()
    # Docker lists a new Swarm network with an empty driver for a moment after it is created.
    (created,) = wait_for(lambda: [n for n in docker_api.networks(names=[network]) if n["Name"] == network and n["Driver"]],
                          timeout=30, what=f"network {network} listed")
    assert created["Driver"] == "overlay" and created["Attachable"] and created["Labels"] == {"openfaas": "true"}
    swarm_runtime(config).health.prepare()  # a second start finds it and creates no duplicate
    assert len([n for n in docker_api.networks(names=[network]) if n["Name"] == network]) == 1
