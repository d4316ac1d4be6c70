"""Pure functions between OpenFaaS objects and Docker Engine API service JSON.

``build_service_spec`` turns a FunctionDeployment into a ServiceSpec; ``function_status`` reads a
service and its tasks back into a FunctionStatus. Neither talks to Docker, so both are unit-tested
on plain dicts. What the client wrote but Swarm stores in another form (``128Mi`` becomes bytes,
a default placement constraint is added) is kept in ``com.openfaas.gateway.*`` labels so the
status reports exactly what was deployed. How functions, namespaces and secrets are named on
Swarm is in ``app.runtime.swarm.naming``.
"""

from __future__ import annotations

import posixpath

from app.domain.models import (
    ANNOTATION_PREFIX,
    GATEWAY_LABEL_PREFIX,
    LABEL_FUNCTION,
    LABEL_NAMESPACE,
    FunctionDeployment,
    FunctionStatus,
    Resources,
)
from app.domain.quantities import parse_cpu, parse_memory
from app.runtime.swarm.naming import SecretVersion, function_identity, function_labels, in_namespace

SECRETS_DIR = "/var/openfaas/secrets"
DEFAULT_CONSTRAINT = "node.platform.os == linux"
LABEL_DEFAULT_CONSTRAINTS = GATEWAY_LABEL_PREFIX + "default-constraints"
ENV_PROCESS = "fprocess"

# Readable by the non-root users function images usually run as.
_SECRET_FILE_MODE = 0o444


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
