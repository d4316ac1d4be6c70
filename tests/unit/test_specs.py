"""The pure mapping between FunctionDeployment and Swarm service JSON."""

from __future__ import annotations

import base64
import json

import pytest

from app.domain.images import registry_auth_header
from app.domain.models import FunctionDeployment, Namespace, Resources
from app.runtime.swarm import naming, specs

NETWORK = "func_functions"
DEFAULT = "openfaas-fn"


def build(replicas=1, namespace=DEFAULT, **fields):
    deployment = FunctionDeployment(service=fields.pop("service", "echo"), image=fields.pop("image", "fn:1"), **fields)
    return specs.build_service_spec(
        deployment, namespace=namespace, default=DEFAULT, network=NETWORK, replicas=replicas, secrets=[]
    )


def test_replicated_dnsrr_start_first_on_the_functions_network():
    spec = build()
    assert spec["Name"] == "echo"
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    assert spec["EndpointSpec"] == {"Mode": "dnsrr"}
    # One task at a time, the new one up before the old one stops; a failed update pauses.
    assert spec["UpdateConfig"] == {"Parallelism": 1, "Order": "start-first", "FailureAction": "pause"}
    assert spec["TaskTemplate"]["Networks"] == [{"Target": NETWORK}]


def test_function_labels_on_service_and_containers():
    spec = build(labels={"team": "a"}, annotations={"topic": "t"})
    assert spec["Labels"]["com.openfaas.function"] == "echo"
    assert spec["Labels"]["faas_function"] == "echo"
    assert spec["Labels"]["team"] == "a"
    assert spec["Labels"]["com.openfaas.annotations.topic"] == "t"
    assert spec["Labels"]["com.openfaas.namespace"] == DEFAULT
    assert spec["TaskTemplate"]["ContainerSpec"]["Labels"] == {
        "com.openfaas.function": "echo", "faas_function": "echo", "com.openfaas.namespace": DEFAULT,
    }


def test_another_namespace_names_the_service_after_both_and_aliases_the_bare_name():
    spec = build(namespace="team-a")
    assert spec["Name"] == "echo_team-a"
    assert spec["TaskTemplate"]["Networks"] == [{"Target": NETWORK, "Aliases": ["echo"]}]
    assert spec["Labels"]["com.openfaas.namespace"] == "team-a"
    assert spec["TaskTemplate"]["ContainerSpec"]["Labels"]["com.openfaas.namespace"] == "team-a"
    status = specs.function_status({"ID": "s1", "Spec": spec}, [], DEFAULT)
    assert (status.name, status.namespace) == ("echo", "team-a")
    assert "com.openfaas.namespace" not in status.labels


def test_a_service_without_a_namespace_label_is_in_the_default_namespace():
    """Functions deployed before namespaces existed keep their name and namespace."""
    spec = build()
    del spec["Labels"]["com.openfaas.namespace"]
    assert naming.function_identity({"Spec": spec}, DEFAULT) == ("echo", DEFAULT)


def test_env_process_becomes_fprocess_and_wins_over_env_vars():
    spec = build(env_process="cat", env_vars={"A": "1", "fprocess": "ignored"})
    assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=1", "fprocess=cat"]


def test_limits_and_reservations_in_engine_units():
    spec = build(limits=Resources(memory="128M", cpu="500m"), requests=Resources(memory="64Mi", cpu="0.25"))
    resources = spec["TaskTemplate"]["Resources"]
    assert resources["Limits"] == {"MemoryBytes": 128 * 2**20, "NanoCPUs": 500_000_000}
    assert resources["Reservations"] == {"MemoryBytes": 64 * 2**20, "NanoCPUs": 250_000_000}


def test_read_only_root_gets_a_tmpfs_at_tmp():
    container = build(read_only_root_filesystem=True)["TaskTemplate"]["ContainerSpec"]
    assert container["ReadOnly"] is True
    assert container["Mounts"] == [{"Type": "tmpfs", "Target": "/tmp"}]
    assert "ReadOnly" not in build()["TaskTemplate"]["ContainerSpec"]


def test_default_constraint_is_added_but_not_reported():
    spec = build()
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == [specs.DEFAULT_CONSTRAINT]
    assert spec["Labels"][specs.LABEL_DEFAULT_CONSTRAINTS] == "true"  # Docker takes string labels only
    status = specs.function_status(_service(spec), [], "ns")
    assert status.constraints == []
    given = build(constraints=["node.role == manager"])
    assert specs.function_status(_service(given), [], "ns").constraints == ["node.role == manager"]


def test_secrets_are_mounted_read_only_under_var_openfaas_secrets():
    deployment = FunctionDeployment(service="echo", image="fn:1", secrets=["api-key"])
    version = naming.SecretVersion("api-key", 3, "id3", "api-key-v3", DEFAULT)
    spec = specs.build_service_spec(
        deployment, namespace=DEFAULT, default=DEFAULT, network=NETWORK, replicas=1, secrets=[version]
    )
    (mount,) = spec["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert mount == {
        "File": {"Name": "/var/openfaas/secrets/api-key", "UID": "0", "GID": "0", "Mode": 0o444},
        "SecretID": "id3",
        "SecretName": "api-key-v3",
    }
    newer = naming.SecretVersion("api-key", 4, "id4", "api-key-v4", DEFAULT)
    rolled = specs.with_secret_version(spec, newer)
    assert rolled["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretID"] == "id4"
    assert spec["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretID"] == "id3"
    assert specs.mounted_secret_names(_service(rolled)) == ["api-key"]


def test_rolling_one_secret_leaves_the_other_mounts_alone():
    deployment = FunctionDeployment(service="echo", image="fn:1", secrets=["api-key", "db"])
    versions = [
        naming.SecretVersion("api-key", 3, "id3", "api-key-v3", DEFAULT),
        naming.SecretVersion("db", 1, "db1", "db-v1", DEFAULT),
    ]
    spec = specs.build_service_spec(
        deployment, namespace=DEFAULT, default=DEFAULT, network=NETWORK, replicas=1, secrets=versions
    )
    # The API lets a reference leave out File; such a mount is not ours to roll.
    spec["TaskTemplate"]["ContainerSpec"]["Secrets"].append({"SecretID": "other", "SecretName": "other"})
    rolled = specs.with_secret_version(spec, naming.SecretVersion("api-key", 4, "id4", "api-key-v4", DEFAULT))
    assert [ref["SecretID"] for ref in rolled["TaskTemplate"]["ContainerSpec"]["Secrets"]] == ["id4", "db1", "other"]
    assert specs.mounted_secret_names(_service(rolled)) == ["api-key", "db"]


def _service(spec, sid="s1"):
    return {"ID": sid, "Spec": spec, "CreatedAt": "2026-01-01T00:00:00.123456789Z"}


def _task(service, state="running", desired="running", template=None):
    return {
        "ServiceID": service["ID"],
        "DesiredState": desired,
        "Status": {"State": state},
        "Spec": template if template is not None else service["Spec"]["TaskTemplate"],
    }


def test_available_counts_running_up_to_date_tasks_of_that_service_only():
    service = _service(build(replicas=3))
    service["Spec"]["TaskTemplate"]["Runtime"] = "container"  # added by the daemon, not on tasks
    current = {k: v for k, v in service["Spec"]["TaskTemplate"].items() if k != "Runtime"}
    old = {**current, "ContainerSpec": {**current["ContainerSpec"], "Image": "fn:0"}}
    other = _service(build(service="other"), sid="s2")
    tasks = [
        _task(service, template=current),
        _task(service, template=current),
        _task(service, state="starting", template=current),
        _task(service, desired="shutdown", template=current),
        _task(service, template=old),
        _task(other),
        {k: v for k, v in _task(service).items() if k != "Spec"},
        {k: v for k, v in _task(service).items() if k != "Status"},
    ]
    assert specs.available_replicas(service, tasks) == 2


def test_status_round_trip():
    spec = build(
        env_vars={"A": "b=c"},
        env_process="cat",
        labels={"team": "a"},
        annotations={"topic": "t"},
        limits=Resources(memory="128Mi"),
        read_only_root_filesystem=True,
    )
    status = specs.function_status(_service(spec), [], "openfaas-fn")
    assert status.env_vars == {"A": "b=c"}
    assert status.env_process == "cat"
    assert status.labels == {"team": "a", "faas_function": "echo"}
    assert status.annotations == {"topic": "t"}
    assert status.limits == Resources(memory="128Mi")
    assert status.requests is None
    assert status.read_only_root_filesystem is True
    assert status.created_at == "2026-01-01T00:00:00.123456789Z"


def test_registry_auth_header_targets_the_image_registry():
    auth = base64.b64encode(b"user:pa:ss").decode()
    for image, address in [
        ("functions/alpine:latest", "https://index.docker.io/v1/"),
        ("alpine", "https://index.docker.io/v1/"),
        ("docker.io/functions/alpine", "https://index.docker.io/v1/"),
        ("registry.example.com:5000/team/fn:1.0", "registry.example.com:5000"),
        ("ghcr.io/org/fn@sha256:" + "a" * 64, "ghcr.io"),
        ("localhost/fn", "localhost"),
    ]:
        decoded = json.loads(base64.urlsafe_b64decode(registry_auth_header(auth, image)))
        assert decoded == {"username": "user", "password": "pa:ss", "serveraddress": address}, image


def test_secret_versions_are_recognised_only_with_our_labels():
    ours = {"ID": "x", "Spec": {"Name": "k-v2", "Labels": naming.secret_labels("k", 2, DEFAULT)}}
    assert naming.read_secret_version(ours, DEFAULT) == naming.SecretVersion("k", 2, "x", "k-v2", DEFAULT)
    assert naming.read_secret_version({"ID": "y", "Spec": {"Name": "k", "Labels": {}}}, DEFAULT) is None
    foreign = {"ID": "z", "Spec": {"Name": "k-v1", "Labels": {"com.openfaas.secret": "k", "com.openfaas.secret.version": "1"}}}
    assert naming.read_secret_version(foreign, DEFAULT) is None


def test_secret_versions_know_their_namespace_and_old_ones_are_in_the_default():
    labels = naming.secret_labels("k", 1, "team-a")
    assert naming.secret_swarm_name("k", 1, "team-a", DEFAULT) == "k_team-a-v1"
    secret = {"ID": "x", "Spec": {"Name": "k_team-a-v1", "Labels": labels}}
    assert naming.read_secret_version(secret, DEFAULT).namespace == "team-a"
    del labels["com.openfaas.namespace"]
    assert naming.read_secret_version({"ID": "x", "Spec": {"Name": "k-v1", "Labels": labels}}, DEFAULT).namespace == DEFAULT


def test_namespace_labels_and_annotations_share_the_config_labels_and_come_back_apart():
    namespace = Namespace("team-a", {"env": "dev"}, {"owner": "me"})
    labels = naming.namespace_config_labels(namespace)
    assert labels == {"com.openfaas.namespace": "team-a", "env": "dev", "com.openfaas.annotations.owner": "me"}
    assert naming.read_namespace("team-a", labels) == namespace
    assert naming.read_namespace("team-a", None) == Namespace("team-a")


def _ours_but(**changes):
    labels = {**naming.secret_labels("k", 2, "openfaas-fn"), **changes}
    return {key: value for key, value in labels.items() if value is not None}


@pytest.mark.parametrize("labels", [
    _ours_but(**{naming.SECRET_VERSION_LABEL: None}),
    _ours_but(**{naming.SECRET_VERSION_LABEL: "two"}),
    _ours_but(**{naming.SECRET_NAME_LABEL: None}),
    None,
])
def test_a_secret_of_ours_needs_a_name_and_a_whole_version(labels):
    secret = {"ID": "x", "Spec": {"Name": "k-v2", "Labels": labels}}
    assert naming.read_secret_version(secret, "openfaas-fn") is None
    assert naming.read_secret_version({"ID": "x"}, "openfaas-fn") is None


def test_status_of_a_hand_labelled_service_without_container_spec():
    service = {"ID": "s9", "Spec": {"Name": "odd", "Labels": {"com.openfaas.function": "odd"}}}
    status = specs.function_status(service, [], "ns")
    assert (status.name, status.image, status.replicas, status.available_replicas) == ("odd", "", 0, 0)
