"""Pure functions between OpenFaaS objects and Docker Engine API service JSON.

``build_service_spec`` turns a FunctionDeployment into a ServiceSpec; ``function_status`` reads a
service and its tasks back into a FunctionStatus. Neither talks to Docker, so both are unit-tested
on plain dicts. What the client wrote but Swarm stores in another form (``128Mi`` becomes bytes,
a default placement constraint is added) is kept in ``com.openfaas.gateway.*`` labels so the
status reports exactly what was deployed.

Namespaces on Swarm: Swarm names are cluster-wide, so a function keeps its bare name as service
name in the default namespace (as before namespaces existed: old services need no change) and is
``<name>_<namespace>`` in any other ("_" appears in neither kind of name, so no two functions can
meet). Each service and its containers carry ``com.openfaas.namespace``; a service without it is
in the default namespace. A namespace other than the default has its own attachable overlay
network, ``<functions network>-<namespace>``, on which each of its functions has its bare name as
alias; its labels and annotations live in a Swarm config of the same name, because a network's
labels cannot change and a config's can. Secret versions are named likewise:
``<name>-v<n>`` in the default namespace, ``<name>_<namespace>-v<n>`` elsewhere.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from app.domain.models import (
    ANNOTATION_PREFIX,
    GATEWAY_LABEL_PREFIX,
    LABEL_FAAS_FUNCTION,
    LABEL_FUNCTION,
    LABEL_NAMESPACE,
    FunctionDeployment,
    FunctionStatus,
    Namespace,
    Resources,
)
from app.domain.quantities import parse_cpu, parse_memory

SECRETS_DIR = "/var/openfaas/secrets"
DEFAULT_CONSTRAINT = "node.platform.os == linux"
LABEL_DEFAULT_CONSTRAINTS = GATEWAY_LABEL_PREFIX + "default-constraints"
SECRET_OWNER_LABEL = "com.openfaas.owner"
SECRET_OWNER = "openfaas"
SECRET_NAME_LABEL = "com.openfaas.secret"
SECRET_VERSION_LABEL = "com.openfaas.secret.version"
ENV_PROCESS = "fprocess"
# Swarm's longest service name.
SERVICE_NAME_MAX = 63

# Readable by the non-root users function images usually run as.
_SECRET_FILE_MODE = 0o444


@dataclass(frozen=True)
class SecretVersion:
    """One Swarm secret holding a version of an OpenFaaS secret."""

    name: str
    version: int
    swarm_id: str
    swarm_name: str
    namespace: str


def in_namespace(name: str, namespace: str, default: str) -> str:
    """The Swarm name of object ``name`` of ``namespace``: the bare name in the ``default``
    namespace, ``<name>_<namespace>`` in any other."""
    return name if namespace == default else f"{name}_{namespace}"


def secret_swarm_name(name: str, version: int, namespace: str, default: str) -> str:
    """The Swarm name of a version: ``<name>[_<namespace>]-v<version>``; the suffix keeps
    versions distinct."""
    return f"{in_namespace(name, namespace, default)}-v{version}"


def secret_labels(name: str, version: int, namespace: str) -> dict[str, str]:
    """Labels that mark a Swarm secret as an OpenFaaS secret version of ``namespace``."""
    return {
        SECRET_OWNER_LABEL: SECRET_OWNER,
        SECRET_NAME_LABEL: name,
        SECRET_VERSION_LABEL: str(version),
        LABEL_NAMESPACE: namespace,
    }


def read_secret_version(secret: dict, default: str) -> SecretVersion | None:
    """The OpenFaaS view of a Swarm secret, or None when it is not one we own; a secret without
    a namespace label (created before namespaces) is in the ``default`` namespace."""
    labels = secret.get("Spec", {}).get("Labels") or {}
    name, version = labels.get(SECRET_NAME_LABEL), labels.get(SECRET_VERSION_LABEL, "")
    if labels.get(SECRET_OWNER_LABEL) != SECRET_OWNER or not name or not version.isdigit():
        return None
    namespace = labels.get(LABEL_NAMESPACE) or default
    return SecretVersion(name, int(version), secret["ID"], secret["Spec"]["Name"], namespace)


def function_labels(name: str, namespace: str) -> dict[str, str]:
    """The labels by which a service (and its containers) is known to be a function of ours,
    and of which namespace."""
    return {LABEL_FUNCTION: name, LABEL_FAAS_FUNCTION: name, LABEL_NAMESPACE: namespace}


def function_identity(service: dict, default: str) -> tuple[str, str]:
    """The (name, namespace) of a function's service. A service without a namespace label is in
    the ``default`` namespace and named as the service (so are services labelled by hand);
    elsewhere the name is the function label, the service name carrying the namespace too."""
    labels = service["Spec"].get("Labels") or {}
    namespace = labels.get(LABEL_NAMESPACE) or default
    if namespace == default:
        return service["Spec"]["Name"], namespace
    return labels.get(LABEL_FUNCTION, ""), namespace


def namespace_network(namespace: str, functions_network: str, default: str) -> str:
    """The network of ``namespace``: the functions network for the default namespace,
    ``<functions network>-<namespace>`` for any other."""
    return functions_network if namespace == default else f"{functions_network}-{namespace}"


def namespace_network_labels(namespace: str) -> dict[str, str]:
    """Labels of a namespace's network: which namespace it is the record of."""
    return {LABEL_NAMESPACE: namespace, "openfaas": "true"}


def namespace_config_labels(namespace: Namespace) -> dict[str, str]:
    """A namespace's labels and annotations as the labels of its Swarm config."""
    labels = {LABEL_NAMESPACE: namespace.name, **namespace.labels}
    labels.update({ANNOTATION_PREFIX + key: value for key, value in namespace.annotations.items()})
    return labels


def read_namespace(name: str, config_labels: dict[str, str] | None) -> Namespace:
    """A namespace from the labels of its config (None: no config, so no labels yet)."""
    labels = {key: value for key, value in (config_labels or {}).items() if key != LABEL_NAMESPACE}
    return Namespace(
        name,
        labels={key: value for key, value in labels.items() if not key.startswith(ANNOTATION_PREFIX)},
        annotations={key[len(ANNOTATION_PREFIX):]: value for key, value in labels.items() if key.startswith(ANNOTATION_PREFIX)},
    )


def _resources_labels(kind: str, resources: Resources | None) -> dict[str, str]:
    if resources is None:
        return {}
    given = {"memory": resources.memory, "cpu": resources.cpu}
    return {f"{GATEWAY_LABEL_PREFIX}{kind}.{key}": value for key, value in given.items() if value}


def _engine_resources(resources: Resources | None) -> dict[str, int]:
    engine: dict[str, int] = {}
    if resources and resources.memory:
        engine["MemoryBytes"] = parse_memory(resources.memory)
    if resources and resources.cpu:
        engine["NanoCPUs"] = parse_cpu(resources.cpu)
    return engine


def service_labels(deployment: FunctionDeployment, namespace: str) -> dict[str, str]:
    """All labels of a function's service: the client's, the annotations, and ours."""
    labels = dict(deployment.labels or {})
    labels.update(function_labels(deployment.service, namespace))
    for key, value in (deployment.annotations or {}).items():
        labels[ANNOTATION_PREFIX + key] = value
    labels.update(_resources_labels("limits", deployment.limits))
    labels.update(_resources_labels("requests", deployment.requests))
    if not deployment.constraints:
        labels[LABEL_DEFAULT_CONSTRAINTS] = "true"
    return labels


def build_service_spec(
    deployment: FunctionDeployment,
    *,
    namespace: str,
    default: str,
    network: str,
    replicas: int,
    secrets: list[SecretVersion],
) -> dict:
    """The Engine API ServiceSpec for ``deployment`` in ``namespace`` (``default`` is the
    default namespace), on ``network``.

    ``secrets`` are the current versions of the secrets the deployment names, in any order; each
    is mounted read-only at ``/var/openfaas/secrets/<name>``. The service is replicated, uses
    ``dnsrr`` endpoint mode (no IPVS needed) and rolls updates start-first. Outside the default
    namespace its name carries the namespace and its bare name is an alias on ``network``, so
    the namespace's functions reach it as ``http://<name>:8080`` as in the default one.
    """
    variables = dict(deployment.env_vars or {})
    if deployment.env_process is not None:
        # envProcess wins over an fprocess in envVars; either way the watchdog gets one.
        variables[ENV_PROCESS] = deployment.env_process
    env = [f"{key}={value}" for key, value in variables.items()]
    container: dict = {
        "Image": deployment.image,
        "Labels": function_labels(deployment.service, namespace),
        "Env": env,
        "Secrets": [
            {
                "File": {"Name": f"{SECRETS_DIR}/{secret.name}", "UID": "0", "GID": "0", "Mode": _SECRET_FILE_MODE},
                "SecretID": secret.swarm_id,
                "SecretName": secret.swarm_name,
            }
            for secret in sorted(secrets, key=lambda s: s.name)
        ],
    }
    if deployment.read_only_root_filesystem:
        container["ReadOnly"] = True
        container["Mounts"] = [{"Type": "tmpfs", "Target": "/tmp"}]
    resources = {}
    if limits := _engine_resources(deployment.limits):
        resources["Limits"] = limits
    if reservations := _engine_resources(deployment.requests):
        resources["Reservations"] = reservations
    attachment: dict = {"Target": network}
    if namespace != default:
        attachment["Aliases"] = [deployment.service]
    return {
        "Name": in_namespace(deployment.service, namespace, default),
        "Labels": service_labels(deployment, namespace),
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": resources,
            "Placement": {"Constraints": list(deployment.constraints or [DEFAULT_CONSTRAINT])},
            "Networks": [attachment],
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
        "UpdateConfig": {"Parallelism": 1, "Order": "start-first", "FailureAction": "pause"},
        "EndpointSpec": {"Mode": "dnsrr"},
    }


def with_replicas(spec: dict, replicas: int) -> dict:
    """A copy of a ServiceSpec with another replica count."""
    return {**spec, "Mode": {"Replicated": {"Replicas": replicas}}}


def with_secret_version(spec: dict, version: SecretVersion) -> dict:
    """A copy of a ServiceSpec whose mount of ``version.name`` points at ``version``."""
    template = spec["TaskTemplate"]
    container = template["ContainerSpec"]
    target = f"{SECRETS_DIR}/{version.name}"
    mounts = [
        {**ref, "SecretID": version.swarm_id, "SecretName": version.swarm_name}
        if ref.get("File", {}).get("Name") == target
        else ref
        for ref in container.get("Secrets") or []
    ]
    return {**spec, "TaskTemplate": {**template, "ContainerSpec": {**container, "Secrets": mounts}}}


def mounted_secret_names(service: dict) -> list[str]:
    """Names of the OpenFaaS secrets a function service mounts."""
    refs = (service["Spec"].get("TaskTemplate") or {}).get("ContainerSpec", {}).get("Secrets") or []
    return [
        posixpath.basename(ref["File"]["Name"])
        for ref in refs
        if posixpath.dirname(ref.get("File", {}).get("Name", "")) == SECRETS_DIR
    ]


def current_replicas(service: dict) -> int:
    """Desired replicas of a replicated service."""
    return int(service["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 0))


def _comparable(task_spec: dict) -> dict:
    # The daemon adds "Runtime" to the service's template but not to the tasks' copies.
    return {key: value for key, value in task_spec.items() if key != "Runtime"}


def available_replicas(service: dict, tasks: list[dict]) -> int:
    """Tasks of ``service`` that are running, meant to run, and built from its current spec.

    ``tasks`` may hold tasks of other services; they are ignored. During a rolling update the old
    tasks still run but do not count, so the number means "replicas of what was deployed".
    """
    current = _comparable(service["Spec"].get("TaskTemplate") or {})
    return sum(
        1
        for task in tasks
        if task.get("ServiceID") == service["ID"]
        and task.get("DesiredState") == "running"
        and task.get("Status", {}).get("State") == "running"
        and _comparable(task.get("Spec", {})) == current
    )


def _resources_from_labels(kind: str, labels: dict[str, str]) -> Resources | None:
    memory = labels.get(f"{GATEWAY_LABEL_PREFIX}{kind}.memory")
    cpu = labels.get(f"{GATEWAY_LABEL_PREFIX}{kind}.cpu")
    return Resources(memory=memory, cpu=cpu) if memory or cpu else None


def function_status(service: dict, tasks: list[dict], default: str) -> FunctionStatus:
    """Read a function's service (and the tasks, of any services) into a FunctionStatus;
    ``default`` is the default namespace."""
    name, namespace = function_identity(service, default)
    spec = service["Spec"]
    all_labels = spec.get("Labels") or {}
    # Tolerate a service someone labelled by hand without a container spec.
    template = spec.get("TaskTemplate") or {}
    container = template.get("ContainerSpec") or {}
    env = dict(item.partition("=")[::2] for item in container.get("Env") or [])
    env_process = env.pop(ENV_PROCESS, None)
    labels = {
        key: value
        for key, value in all_labels.items()
        if key not in (LABEL_FUNCTION, LABEL_NAMESPACE)
        and not key.startswith(ANNOTATION_PREFIX)
        and not key.startswith(GATEWAY_LABEL_PREFIX)
    }
    annotations = {
        key[len(ANNOTATION_PREFIX) :]: value for key, value in all_labels.items() if key.startswith(ANNOTATION_PREFIX)
    }
    constraints = [] if LABEL_DEFAULT_CONSTRAINTS in all_labels else list(template.get("Placement", {}).get("Constraints") or [])
    return FunctionStatus(
        name=name,
        image=container.get("Image", ""),
        namespace=namespace,
        replicas=current_replicas(service),
        available_replicas=available_replicas(service, tasks),
        labels=labels,
        annotations=annotations,
        env_process=env_process,
        env_vars=env or None,
        constraints=constraints,
        secrets=mounted_secret_names(service),
        limits=_resources_from_labels("limits", all_labels),
        requests=_resources_from_labels("requests", all_labels),
        read_only_root_filesystem=bool(container.get("ReadOnly")),
        created_at=service.get("CreatedAt"),
    )
