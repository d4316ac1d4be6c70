"""The pure mapping between FunctionDeployment and Swarm service JSON (app.runtime.swarm.specs):
examples, then properties of labels, annotations and the rest of a deployment through the spec
and back."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.domain.images import registry_auth_header
from app.domain.models import LABEL_FAAS_FUNCTION, FunctionDeployment, Namespace, Resources, Rollout
from app.runtime.swarm import naming, specs
from app.runtime.swarm.naming import SecretVersion
from app.runtime.swarm.specs import build_service_spec, function_status
from app.web.schemas import FunctionStatusSchema
from tests.unit.helpers import DEPLOYMENT, function_names, labels, references, secret_names

NETWORK = "func_functions"
DEFAULT = "openfaas-fn"
SECOND = 10**9


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
    # One task at a time, the new one up before the old one stops, then a pause as long as the
    # default readiness probe may take to pass (0 + 2 x (3 + 1) + 1 s) and the gateway 2 s more
    # to give the update up; a replica that exits within the 9 s rolls back.
    assert spec["UpdateConfig"] == {
        "Parallelism": 1, "Order": "start-first", "Delay": 11 * SECOND, "Monitor": 9 * SECOND,
        "FailureAction": "rollback", "MaxFailureRatio": 0,
    }
    assert spec["RollbackConfig"] == {"Parallelism": 1, "Order": "start-first", "FailureAction": "pause"}
    assert spec["TaskTemplate"]["Networks"] == [{"Target": NETWORK}]


def test_the_pause_between_replicas_follows_the_readiness_labels():
    spec = build(labels={"com.openfaas.ready.http.periodSeconds": "1", "com.openfaas.ready.http.failureThreshold": "1",
                         "com.openfaas.ready.http.timeoutSeconds": "0.5"})
    # 0 + 1 x (1 + 1) + 0.5 s, and 2 s for the gateway, rounded up.
    assert spec["UpdateConfig"]["Delay"] == 5 * SECOND
    assert spec["UpdateConfig"]["Monitor"] == 3 * SECOND


@pytest.mark.parametrize("env, grace", [
    (None, 21),  # the watchdogs' default write_timeout of 10 s, twice, and a second
    ({"write_timeout": "30s"}, 61),
    ({"write_timeout": "5"}, 11),
    ({"write_timeout": "1m"}, 121),
    ({"write_timeout": "soon"}, 21),  # the watchdog would not start on it either: the default
    ({"write_timeout": "5s", "healthcheck_interval": "8s"}, 17),
    ({"write_timeout": "5s", "healthcheck_interval": "2s"}, 11),
])
def test_replicas_are_given_time_to_drain_their_calls(env, grace):
    assert build(env_vars=env)["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] == grace * SECOND


def _updated(spec, previous=None, state=None, version=7):
    service = {"ID": "svc1", "Spec": spec, "Version": {"Index": version}}
    if previous is not None:
        service["PreviousSpec"] = previous
    if state is not None:
        service["UpdateStatus"] = {"State": state, "StartedAt": "2026-01-01T00:00:00.5Z", "Message": "why"}
    return service


def _endpoint_task(task_id, spec, address, desired="running", state="running", service="svc1"):
    return {
        "ID": task_id, "ServiceID": service, "DesiredState": desired, "Status": {"State": state}, "Spec": spec,
        "NetworksAttachments": [
            {"Network": {"Spec": {"Name": "ingress"}}, "Addresses": ["10.255.0.9/16"]},
            {"Network": {"Spec": {"Name": NETWORK}}, "Addresses": [f"{address}/24"]},
        ],
    }


def test_endpoints_are_the_running_tasks_with_their_address_version_and_drain():
    old, new = build(image="v1"), build(image="v2")
    tasks = [
        _endpoint_task("t1", old["TaskTemplate"], "10.0.1.5", desired="shutdown"),
        _endpoint_task("t2", old["TaskTemplate"], "10.0.1.6"),
        _endpoint_task("t3", new["TaskTemplate"], "10.0.1.7"),
        _endpoint_task("t4", new["TaskTemplate"], "10.0.1.8", state="starting"),
        _endpoint_task("t5", new["TaskTemplate"], "10.0.1.9", service="other"),
    ]
    found = specs.function_endpoints(_updated(new, previous=old, state="updating"), tasks, DEFAULT)
    assert (found.name, found.namespace, found.replicas, found.version) == ("echo", DEFAULT, 1, 7)
    assert [(t.id, t.address, t.current, t.draining) for t in found.tasks] == [
        ("t1", "10.0.1.5", False, True), ("t2", "10.0.1.6", False, False), ("t3", "10.0.1.7", True, False)]
    assert found.can_roll_back and found.updated_at == 1767225600.0


@pytest.mark.parametrize("previous, state, labels, expected", [
    (None, None, {}, False),  # never updated
    ("v1", "updating", {}, True),
    ("v1", "completed", {}, True),
    ("v2", "completed", {}, False),  # the previous spec runs the same replicas: nothing to go back to
    ("v1", "rollback_completed", {}, False),  # Swarm rolled back itself
    ("v1", "completed", {specs.LABEL_ROLLED_BACK: "why"}, False),  # never back to what was given up
])
def test_an_update_can_be_rolled_back_once_and_only_to_other_replicas(previous, state, labels, expected):
    spec = build(image="v2")
    spec["Labels"].update(labels)
    service = _updated(spec, previous=previous and build(image=previous), state=state)
    assert specs.can_roll_back(service) is expected


def test_a_rollback_puts_the_previous_spec_back_with_the_reason_at_todays_replicas():
    service = _updated(build(image="v2", replicas=3), previous=build(image="v1", replicas=2), state="updating")
    spec = specs.rolled_back_spec(service, "no new replica became ready")
    assert spec["TaskTemplate"] == build(image="v1")["TaskTemplate"]
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}}
    assert spec["Labels"][specs.LABEL_ROLLED_BACK] == "no new replica became ready"
    status = function_status({**service, "Spec": spec}, [], DEFAULT)
    assert status.image == "v1" and specs.LABEL_ROLLED_BACK not in status.labels
    assert (status.rollout.state, status.rollout.message) == ("rolled_back", "no new replica became ready")
    # Swarm's own state otherwise; none before the first update.
    assert function_status(service, [], DEFAULT).rollout == Rollout("updating", "why")
    assert function_status(_updated(build()), [], DEFAULT).rollout is None


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


STATUS = FunctionStatusSchema()
annotations = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=20), max_size=5)


def _status(deployment):
    versions = [SecretVersion(name, 1, f"id-{name}", f"{name}-v1", "openfaas-fn") for name in deployment.secrets or []]
    spec = build_service_spec(
        deployment, namespace="openfaas-fn", default="openfaas-fn", network="func_functions", replicas=1, secrets=versions
    )
    return function_status({"ID": "s1", "Spec": spec}, [], "openfaas-fn")


@given(function_names, labels, annotations, st.booleans())
def test_labels_and_annotations_round_trip(name, given_labels, given_annotations, with_faas_label):
    if with_faas_label:
        given_labels = {**given_labels, LABEL_FAAS_FUNCTION: name}
    body = {"service": name, "image": "fn:1", "labels": given_labels, "annotations": given_annotations}
    status = _status(DEPLOYMENT.load(body))
    expected_labels = {**given_labels, LABEL_FAAS_FUNCTION: name}
    assert (status.labels, status.annotations) == (expected_labels, given_annotations)
    out = STATUS.dump(status)
    assert (out["labels"], out["annotations"]) == (expected_labels, given_annotations)


_env_names = st.text(min_size=1, max_size=10).filter(lambda key: "=" not in key and "\x00" not in key)
# Swarm's constraint grammar: a key of 2+ characters not starting with a digit.
_constraints = st.builds("{} {} {}".format, st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{1,19}", fullmatch=True),
                         st.sampled_from(["==", "!="]), st.from_regex(r"[a-z0-9][a-z0-9 ]{0,10}", fullmatch=True))
_memory = st.builds("{}{}".format, st.integers(6, 4096), st.sampled_from(["Mi", "M", "mb"]))
_cpu = st.one_of(st.integers(1, 8000).map("{}m".format), st.sampled_from(["0.5", "1", "2.25"]))
_resources = st.fixed_dictionaries({}, optional={"memory": _memory, "cpu": _cpu})


@settings(max_examples=60)
@given(
    function_names,
    references().map(lambda parts: parts[0]).filter(lambda reference: len(reference) <= 255),
    st.dictionaries(_env_names.filter(lambda key: key != "fprocess"), st.text(max_size=10), max_size=4),
    st.one_of(st.none(), st.text(max_size=10)),
    st.lists(_constraints, max_size=3),
    st.lists(secret_names, max_size=3),
    st.one_of(st.none(), _resources),
    st.one_of(st.none(), _resources),
    st.booleans(),
)
def test_the_status_reports_what_was_deployed(name, image, env, process, constraints, secrets, limits, requests, read_only):
    body = {"service": name, "image": image, "envVars": env, "envProcess": process, "constraints": constraints,
            "secrets": secrets, "limits": limits, "requests": requests, "readOnlyRootFilesystem": read_only}
    status = _status(DEPLOYMENT.load(body))
    # An empty envProcess is Go's "not set": the image's own process stays.
    assert (status.name, status.image, status.env_process) == (name, image, process or None)
    assert status.env_vars == (env or None)
    assert status.constraints == constraints
    assert sorted(status.secrets) == sorted(set(secrets))
    assert status.limits == (Resources(**limits) if limits else None)
    assert status.requests == (Resources(**requests) if requests else None)
    assert status.read_only_root_filesystem is read_only


# "envVars become env", fprocess included when envProcess is absent (it used to be dropped); envProcess wins.
@given(st.dictionaries(st.one_of(st.just("fprocess"), _env_names), st.text(max_size=10), max_size=4),
       st.one_of(st.none(), st.text(max_size=10)))
@example({"fprocess": "cat"}, None)
def test_every_env_var_reaches_the_container(env, process):
    deployment = DEPLOYMENT.load({"service": "fn", "image": "fn:1", "envVars": env, "envProcess": process})
    spec = build_service_spec(deployment, namespace="ns", default="ns", network="n", replicas=1, secrets=[])
    container = spec["TaskTemplate"]["ContainerSpec"]
    given_env = dict(item.partition("=")[::2] for item in container["Env"])
    assert given_env == {**env, **({"fprocess": process} if process else {})}
