"""Pure functions between OpenFaaS objects and Docker Engine API service JSON.

``build_service_spec`` turns a FunctionDeployment into a ServiceSpec; ``function_status`` reads a
service and its tasks back into a FunctionStatus. Neither talks to Docker, so both are unit-tested
on plain dicts. What the client wrote but Swarm stores in another form (``128Mi`` becomes bytes,
a default placement constraint is added) is kept in ``com.openfaas.gateway.*`` labels so the
status reports exactly what was deployed. How functions, namespaces and secrets are named on
Swarm is in ``app.runtime.swarm.naming``.
"""

from __future__ import annotations

import math
import posixpath
from typing import Iterable

from app.config import parse_duration
from app.domain.models import (
    ANNOTATION_PREFIX,
    GATEWAY_LABEL_PREFIX,
    LABEL_FUNCTION,
    LABEL_NAMESPACE,
    FunctionDeployment,
    FunctionEndpoints,
    FunctionStatus,
    Resources,
    Rollout,
    TaskEndpoint,
)
from app.domain.probes import ROLLBACK_DECISION_TIME, Probes
from app.domain.quantities import parse_cpu, parse_memory
from app.domain.timestamps import parse_rfc3339
from app.runtime.swarm.naming import SecretVersion, function_identity, function_labels, in_namespace

SECRETS_DIR = "/var/openfaas/secrets"
DEFAULT_CONSTRAINT = "node.platform.os == linux"
LABEL_DEFAULT_CONSTRAINTS = GATEWAY_LABEL_PREFIX + "default-constraints"
ENV_PROCESS = "fprocess"
# Why the gateway gave up the update this spec replaced; set on the spec it rolled back to.
LABEL_ROLLED_BACK = GATEWAY_LABEL_PREFIX + "rolled-back"
# The watchdogs' own default for write_timeout, the longest a call may take.
WATCHDOG_WRITE_TIMEOUT = 10.0
_NANOS = 10**9

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
    container["StopGracePeriod"] = stop_grace_period(variables)
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
        "UpdateConfig": update_config(Probes.from_labels(deployment.labels)),
        "RollbackConfig": {"Parallelism": 1, "Order": "start-first", "FailureAction": "pause"},
        "EndpointSpec": {"Mode": "dnsrr"},
    }


def update_config(probes: Probes) -> dict:
    """How Swarm rolls a new spec out: one replica at a time, the new one started before the old
    one stops, and a pause after each as long as the readiness probe may take to pass
    (``Probe.settle_time``) and the gateway to act on it (``ROLLBACK_DECISION_TIME``). Swarm
    only knows that a container runs; the pause lets the gateway, which probes, route to the new
    replica once it is ready and roll the update back (app.dataplane.readiness) before Swarm
    replaces the next old replica. A new replica that exits within the settle time makes Swarm
    roll back by itself."""
    settle = probes.readiness.settle_time
    return {
        "Parallelism": 1,
        "Order": "start-first",
        "Delay": math.ceil(settle + ROLLBACK_DECISION_TIME) * _NANOS,
        "Monitor": math.ceil(settle) * _NANOS,
        "FailureAction": "rollback",
        "MaxFailureRatio": 0,
    }


def stop_grace_period(env: dict[str, str]) -> int:
    """Nanoseconds Swarm waits between asking a replica to stop and killing it: enough for a
    watchdog to drain. On SIGTERM a watchdog fails its health check and keeps serving for
    ``healthcheck_interval`` (``write_timeout`` unless set), then closes its port and waits as
    long again for the calls in flight, each at most ``write_timeout`` long; a second more."""
    write_timeout = _duration(env, "write_timeout", WATCHDOG_WRITE_TIMEOUT)
    interval = _duration(env, "healthcheck_interval", write_timeout)
    return int((2 * max(write_timeout, interval) + 1) * _NANOS)


def _duration(env: dict[str, str], variable: str, default: float) -> float:
    try:
        return parse_duration(env[variable])
    except (KeyError, ValueError):  # unset, or a value the watchdog would not start with either
        return default


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


def tasks_by_service(tasks: Iterable[dict]) -> dict[str, list[dict]]:
    """``tasks`` grouped by their service's ID: what each service's readers take, so reading a
    thousand services costs one pass over the tasks, not one each."""
    grouped: dict[str, list[dict]] = {}
    for task in tasks:
        grouped.setdefault(task.get("ServiceID", ""), []).append(task)
    return grouped


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


def rollout(service: dict) -> Rollout | None:
    """Where the service's last update stands, None when it was never updated."""
    reason = (service["Spec"].get("Labels") or {}).get(LABEL_ROLLED_BACK)
    if reason:
        return Rollout("rolled_back", reason)
    status = service.get("UpdateStatus")
    if not status or not status.get("State"):
        return None
    return Rollout(status["State"], status.get("Message") or None)


def _task_address(task: dict) -> str | None:
    # A function is on one network (its namespace's); Swarm's ingress is never among them (dnsrr).
    for attachment in task.get("NetworksAttachments") or []:
        if attachment.get("Network", {}).get("Spec", {}).get("Name") == "ingress":
            continue
        for address in attachment.get("Addresses") or []:
            return address.partition("/")[0]
    return None


def function_endpoints(service: dict, tasks: list[dict], default: str) -> FunctionEndpoints:
    """A function's running replicas with their addresses, of ``tasks`` (of any services), as
    routing needs them: a task Swarm is stopping still runs, and is ``draining``."""
    name, namespace = function_identity(service, default)
    spec = service["Spec"]
    current = _comparable(spec.get("TaskTemplate") or {})
    updated_at = _update_started(service)
    endpoints = []
    for task in tasks:
        if task.get("ServiceID") != service["ID"] or task.get("Status", {}).get("State") != "running":
            continue
        address = _task_address(task)
        if not address:
            continue
        endpoints.append(TaskEndpoint(
            id=task["ID"],
            address=address,
            current=_comparable(task.get("Spec", {})) == current,
            draining=task.get("DesiredState") != "running",
        ))
    return FunctionEndpoints(
        name=name,
        namespace=namespace,
        labels=spec.get("Labels") or {},
        replicas=current_replicas(service),
        version=service["Version"]["Index"],
        # Only an update can be rolled back (and comparing specs for a thousand functions twice a
        # second is not free).
        can_roll_back=updated_at is not None and can_roll_back(service),
        updated_at=updated_at,
        tasks=sorted(endpoints, key=lambda endpoint: endpoint.id),
    )


def _update_started(service: dict) -> float | None:
    started = (service.get("UpdateStatus") or {}).get("StartedAt")
    try:
        return float(parse_rfc3339(started)[0]) if started else None
    except ValueError:
        return None


def can_roll_back(service: dict) -> bool:
    """Whether the service has a previous spec with other replicas to go back to; never back again
    to where a rollback came from, nor during or after Swarm's own rollback."""
    spec, previous = service["Spec"], service.get("PreviousSpec")
    state = (service.get("UpdateStatus") or {}).get("State", "")
    return (
        bool(previous)
        and LABEL_ROLLED_BACK not in (spec.get("Labels") or {})
        and not state.startswith("rollback")
        and _comparable(previous.get("TaskTemplate") or {}) != _comparable(spec.get("TaskTemplate") or {})
    )


def rolled_back_spec(service: dict, reason: str) -> dict:
    """The service's previous spec, to put back because of ``reason``, at today's replicas."""
    previous = service["PreviousSpec"]
    labels = {**(previous.get("Labels") or {}), LABEL_ROLLED_BACK: reason}
    return with_replicas({**previous, "Labels": labels}, current_replicas(service))


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
        rollout=rollout(service),
    )
