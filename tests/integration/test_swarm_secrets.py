"""The secrets lifecycle against the real Swarm, read back from inside the function's task."""

from __future__ import annotations

from tests.swarm import name, wait_available
from tests.waiting import wait_for


def _read_in_task(docker_api, function: str, secret: str) -> bytes | None:
    """The secret file as the function's running container sees it (None without one)."""
    containers = docker_api.containers(filters={"label": f"com.docker.swarm.service.name={function}"})
    if len(containers) != 1:
        return None
    exec_id = docker_api.exec_create(containers[0]["Id"], ["cat", f"/var/openfaas/secrets/{secret}"])["Id"]
    return docker_api.exec_start(exec_id)


def test_secret_lifecycle_rolls_functions_onto_new_values(client, docker_api, watchdog_image, caplog):
    secret, fn = name("api-key"), name("reader")
    assert client.post("/system/secrets", json={"name": secret, "value": "first-value"}).status_code == 201
    assert {"name": secret} in client.get("/system/secrets").get_json()
    body = {"service": fn, "image": watchdog_image, "secrets": [secret], "readOnlyRootFilesystem": True}
    assert client.post("/system/functions", json=body).status_code == 202
    wait_available(client, fn, 1)
    assert _read_in_task(docker_api, fn, secret) == b"first-value"

    assert client.put("/system/secrets", json={"name": secret, "value": "second-value"}).status_code == 200
    wait_for(lambda: _read_in_task(docker_api, fn, secret) == b"second-value", what="the task to read the new value")
    status = wait_available(client, fn, 1)
    assert status["secrets"] == [secret]
    names = [s["Spec"]["Name"] for s in docker_api.secrets() if s["Spec"]["Name"].startswith(secret)]
    assert f"{secret}-v2" in names

    in_use = client.delete("/system/secrets", json={"name": secret})
    assert in_use.status_code == 409 and fn in in_use.get_data(as_text=True)

    assert client.delete("/system/functions", json={"functionName": fn}).status_code == 200
    assert client.delete("/system/secrets", json={"name": secret}).status_code == 200
    assert {"name": secret} not in client.get("/system/secrets").get_json()
    wait_for(
        lambda: not [s for s in docker_api.secrets() if s["Spec"]["Name"].startswith(secret)],
        what="every version of the secret to be gone",
    )

    everything = caplog.text + "".join(
        client.get(path).get_data(as_text=True) for path in ("/system/secrets", "/system/functions")
    )
    assert "first-value" not in everything and "second-value" not in everything


def test_raw_value_and_conflicts(client, docker_api):
    secret = name("blob")
    assert client.post("/system/secrets", json={"name": secret, "rawValue": "AAECAw=="}).status_code == 201
    assert client.post("/system/secrets", json={"name": secret, "value": "x"}).status_code == 409
    assert client.put("/system/secrets", json={"name": name("ghost"), "value": "x"}).status_code == 404
    assert client.delete("/system/secrets", json={"name": name("ghost")}).status_code == 404
