"""The Swarm service layer: the only module that talks to Docker.

``SwarmProvider`` implements ``app.provider.Provider`` with the docker SDK's low-level client.
It only ever reads, changes or removes services labelled ``com.openfaas.function`` and secrets
labelled ``com.openfaas.owner=openfaas``; a name that belongs to anything else is "not found".
Docker failures become domain errors in ``docker_errors``: unreachable or not a manager is
BackendUnavailable (503); refusals keep Docker's own explanation in the sentence.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator

import docker
import requests
from docker.errors import APIError, DockerException
from urllib3.util import Retry

from app.config import Config
from app.errors import BackendFailure, BackendUnavailable, Conflict, GatewayError, InvalidRequest, NotFound
from app.images import registry_auth_header
from app.models import LABEL_FUNCTION, FunctionDeployment, FunctionStatus, Instance, ReplicaStats, ScalingPolicy
from app.swarm import readings, specs

log = logging.getLogger(__name__)

# Pinned rather than negotiated so that building the client needs no running daemon; 1.41 is
# what Debian's docker.io (20.10) speaks, and newer engines still accept it.
DOCKER_API_VERSION = "1.41"
# A concurrent scale or update changes the service version under us; re-read and try again.
_UPDATE_ATTEMPTS = 3


# Docker's own status codes that already mean what ours mean.
_MAPPED_STATUS = {400: InvalidRequest, 404: NotFound, 409: Conflict, 503: BackendUnavailable}


@contextlib.contextmanager
def docker_errors(action: str) -> Iterator[None]:
    """Turn transport failures and Docker's refusals into domain errors naming ``action``."""
    try:
        yield
    except APIError as exc:
        error = _MAPPED_STATUS.get(exc.status_code or 0, BackendFailure)
        if error is BackendFailure:
            log.warning("docker failed to %s: %s", action, exc.explanation)
        raise error(f"Docker could not {action}: {exc.explanation}") from None
    except requests.exceptions.Timeout:
        raise BackendUnavailable(f"Docker did not answer in time; could not {action}.") from None
    except (requests.exceptions.ConnectionError, DockerException) as exc:
        log.warning("docker unreachable; could not %s: %s", action, exc)
        raise BackendUnavailable(f"Docker is unreachable; could not {action}.") from None


class SwarmProvider:
    """OpenFaaS functions and secrets as Docker Swarm services and secrets."""

    def __init__(self, config: Config, client: docker.APIClient | None = None):
        self.config = config
        self.api = client or docker.APIClient(
            version=DOCKER_API_VERSION, timeout=config.docker_timeout, **docker.utils.kwargs_from_env()
        )
        # After a daemon restart every pooled connection is dead; without a retry the first
        # request on each would fail although Docker is back. Only reads are retried, so a
        # create or update is never sent twice.
        self.api.get_adapter(self.api.base_url).max_retries = Retry(
            total=3, connect=2, read=1, status=0, allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False
        )

    # health and start-up

    def check_health(self) -> None:
        with docker_errors("report its state"):
            swarm = self.api.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            raise BackendUnavailable("Docker answers but this node is not part of a Swarm; run docker swarm init.")
        if not swarm.get("ControlAvailable"):
            raise BackendUnavailable("Docker answers but this node is not a Swarm manager.")

    def ensure_ready(self) -> None:
        self.check_health()
        self._ensure_functions_network()

    def _network_exists(self, name: str) -> bool:
        with docker_errors(f"look up network {name}"):
            # The names filter matches substrings; only the exact name counts.
            return any(net["Name"] == name for net in self.api.networks(names=[name]))

    def _ensure_functions_network(self) -> None:
        name = self.config.functions_network
        if self._network_exists(name):
            return
        log.info("creating functions network %s", name)
        try:
            with docker_errors(f"create network {name}"):
                self.api.create_network(
                    name, driver="overlay", attachable=True, labels={"openfaas": "true"}, check_duplicate=True
                )
        except (Conflict, BackendFailure):
            # Another gateway process may have created it a moment ago; that is what we wanted.
            if not self._network_exists(name):
                raise

    # reading functions

    def _function_services(self, name: str | None = None) -> list[dict]:
        filters: dict = {"label": LABEL_FUNCTION}
        if name is not None:
            filters["name"] = name
        with docker_errors("list services"):
            services = self.api.services(filters=filters)
        # The name filter matches prefixes; only the exact name is the function.
        return [svc for svc in services if name is None or svc["Spec"]["Name"] == name]

    def function_services(self) -> list[dict]:
        """Every function's service."""
        return self._function_services()

    def owned_service(self, service_id: str) -> dict:
        """The service with ID ``service_id``. Raises NotFound (404) unless it is a function."""
        with docker_errors("inspect a service"):
            service = self.api.inspect_service(service_id)
        if LABEL_FUNCTION not in (service["Spec"].get("Labels") or {}):
            raise NotFound(f"Service {service_id} is not a function.")
        return service

    def function_service(self, name: str) -> dict:
        """The service of function ``name``. Raises NotFound (404) unless it is one of ours."""
        found = self._function_services(name)
        if not found:
            raise NotFound(f"Function {name} not found.")
        return found[0]

    def function_task(self, name: str, task_id: str) -> dict:
        """A task of function ``name`` by full or unique partial ID.

        Raises NotFound (404) when the function has no such task.
        """
        service = self.function_service(name)
        with docker_errors("list tasks"):
            tasks = self.api.tasks(filters={"service": service["ID"], "id": task_id})
        exact = [task for task in tasks if task["ID"] == task_id]
        if exact or len(tasks) == 1:
            return (exact or tasks)[0]
        raise NotFound(f"Instance {task_id} of function {name} not found.")

    def _running_tasks(self, service_id: str | None = None) -> list[dict]:
        filters: dict = {"desired-state": "running"}
        if service_id is not None:
            filters["service"] = service_id
        with docker_errors("list tasks"):
            return self.api.tasks(filters=filters)

    def list_functions(self) -> list[FunctionStatus]:
        services = self._function_services()
        # One call for all tasks, whatever the number of functions.
        tasks = self._running_tasks() if services else []
        namespace = self.config.namespace
        return sorted((specs.function_status(svc, tasks, namespace) for svc in services), key=lambda f: f.name)

    def get_function(self, name: str) -> FunctionStatus:
        service = self.function_service(name)
        return specs.function_status(service, self._running_tasks(service["ID"]), self.config.namespace)

    def _read_container(self, container: str, what: str, **params) -> dict | None:
        """``/containers/{id}/{what}``; None when this node's Docker has no such container (it
        runs on another node, or went since the task list was read)."""
        try:
            with docker_errors(f"read a replica's {what}"):
                return self._engine("GET", f"/containers/{container}/{what}", params=params)
        except NotFound:
            return None

    def _stats(self, task: dict, name: str, namespace: str) -> ReplicaStats | None:
        # one-shot: the counters as they are now, without Docker waiting for a second sample.
        stats = self._read_container(readings.container_of(task), "stats", stream=0, **{"one-shot": 1})
        return readings.read_stats(stats, name, namespace, task["ID"]) if stats else None

    def replica_stats(self, name: str | None = None) -> list[ReplicaStats]:
        """Counters of every running replica whose container this node's Docker can read;
        replicas on other nodes are left out. One stats call per replica.

        Raises NotFound (404) for an unknown ``name``, BackendUnavailable (503).
        """
        services = [self.function_service(name)] if name is not None else self._function_services()
        if not services:
            return []
        owners = {svc["ID"]: svc for svc in services}
        tasks = self._running_tasks(services[0]["ID"] if name is not None else None)
        found = []
        for task in tasks:
            service = owners.get(task.get("ServiceID"))
            if service is None or not readings.is_running(task):
                continue
            spec = service["Spec"]
            stats = self._stats(task, spec["Name"], readings.namespace_of(spec.get("Labels"), self.config.namespace))
            if stats is not None:
                found.append(stats)
        return found

    def instances(self, name: str) -> list[Instance]:
        """Each slot's current task with the exit of its last ended one; containers on this node
        are inspected (health, start time) and measured, the others reported as unmeasured.

        Raises NotFound (404) for an unknown function, BackendUnavailable (503).
        """
        service = self.function_service(name)
        namespace = readings.namespace_of(service["Spec"].get("Labels"), self.config.namespace)
        with docker_errors("list tasks"):
            tasks = self.api.tasks(filters={"service": service["ID"]})
        with docker_errors("list nodes"):
            nodes = {node["ID"]: (node.get("Description") or {}).get("Hostname") for node in self.api.nodes()}
        found = []
        for task, previous in readings.current_replicas(tasks):
            state = stats = None
            if readings.is_running(task):
                inspected = self._read_container(readings.container_of(task), "json")
                state = (inspected or {}).get("State")
                stats = self._stats(task, name, namespace) if inspected else None
            node = nodes.get(task.get("NodeID")) or task.get("NodeID")
            found.append(
                readings.read_instance(
                    task, previous, name=name, namespace=namespace, node=node, state=state, stats=stats
                )
            )
        return found

    # changing functions

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Send one Engine API request; a non-2xx answer raises docker's APIError.

        The SDK's create and update calls take registry credentials only from the daemon's own
        config file, and its log calls hide the connection we must be able to close, so those
        requests are sent with the SDK's session directly.
        """
        response = self.api.request(method, f"{self.api.base_url}/v{self.api.api_version}{path}", **kwargs)
        try:
            response.raise_for_status()
        except requests.exceptions.HTTPError as exc:
            response.close()
            docker.errors.create_api_error_from_http_exception(exc)
        return response

    def _engine(self, method: str, path: str, body: dict | None = None, **kwargs) -> dict:
        response = self.request(method, path, json=body, **kwargs)
        return response.json() if response.content else {}

    def _deployment_spec(self, deployment: FunctionDeployment, replicas: int) -> tuple[dict, dict]:
        versions = self._current_secret_versions()
        missing = [name for name in deployment.secrets or [] if name not in versions]
        if missing:
            raise NotFound(f"Secret {missing[0]} not found; create it before deploying {deployment.service}.")
        network = deployment.network or self.config.functions_network
        if not deployment.network:
            self._ensure_functions_network()
        elif not self._network_exists(network):
            raise InvalidRequest(f"Invalid network: network {network} does not exist.")
        spec = specs.build_service_spec(
            deployment,
            network=network,
            replicas=replicas,
            secrets=[versions[name] for name in deployment.secrets or []],
        )
        headers = {}
        if deployment.registry_auth:
            headers["X-Registry-Auth"] = registry_auth_header(deployment.registry_auth, deployment.image)
        return spec, headers

    def deploy(self, deployment: FunctionDeployment) -> None:
        name = deployment.service
        replicas = ScalingPolicy.from_labels(deployment.labels).initial_replicas()
        spec, headers = self._deployment_spec(deployment, replicas)
        try:
            with docker_errors(f"create function {name}"):
                self._engine("POST", "/services/create", spec, headers=headers)
        except Conflict:
            if self._function_services(name):
                raise Conflict(f"Function {name} already exists; use PUT to update it.") from None
            if self._service_exists(name):
                raise Conflict(f"A Docker service named {name} exists and is not an OpenFaaS function.") from None
            raise

    def _service_exists(self, name: str) -> bool:
        with docker_errors("list services"):
            return any(svc["Spec"]["Name"] == name for svc in self.api.services(filters={"name": name}))

    def _update_service(self, name: str, change: Callable[[dict], tuple[dict, dict]]) -> dict:
        """Apply ``change(service) -> (spec, headers)`` to a function, retrying lost races."""
        for attempt in range(_UPDATE_ATTEMPTS):
            service = self.function_service(name)
            spec, headers = change(service)
            if spec == service["Spec"] and not headers:
                # Nothing to change: an update would still restart nothing but bump the version,
                # and concurrent identical requests (scale from zero) should cost one update.
                return spec
            try:
                with docker_errors(f"update function {name}"):
                    self._engine(
                        "POST",
                        f"/services/{service['ID']}/update",
                        spec,
                        params={"version": service["Version"]["Index"]},
                        headers=headers,
                    )
                return spec
            except GatewayError as exc:
                if "out of sequence" not in exc.message or attempt == _UPDATE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def update(self, deployment: FunctionDeployment) -> None:
        policy = ScalingPolicy.from_labels(deployment.labels)
        self._update_service(
            deployment.service,
            lambda service: self._deployment_spec(deployment, policy.replicas_after_update(specs.current_replicas(service))),
        )

    def delete(self, name: str) -> None:
        service = self.function_service(name)
        with docker_errors(f"remove function {name}"):
            self.api.remove_service(service["ID"])

    def scale(self, name: str, replicas: int) -> int:
        def change(service: dict) -> tuple[dict, dict]:
            policy = ScalingPolicy.from_labels(service["Spec"].get("Labels"))
            return specs.with_replicas(service["Spec"], policy.manual_scale(replicas)), {}

        return specs.current_replicas({"Spec": self._update_service(name, change)})

    # secrets

    def _secret_versions(self) -> dict[str, list[specs.SecretVersion]]:
        with docker_errors("list secrets"):
            found = self.api.secrets(filters={"label": f"{specs.SECRET_OWNER_LABEL}={specs.SECRET_OWNER}"})
        versions: dict[str, list[specs.SecretVersion]] = {}
        for secret in found:
            version = specs.read_secret_version(secret)
            if version:
                versions.setdefault(version.name, []).append(version)
        return {name: sorted(items, key=lambda v: v.version) for name, items in versions.items()}

    def _current_secret_versions(self) -> dict[str, specs.SecretVersion]:
        return {name: items[-1] for name, items in self._secret_versions().items()}

    def _create_secret_version(self, name: str, version: int, data: bytes) -> specs.SecretVersion:
        swarm_name = specs.secret_swarm_name(name, version)
        try:
            with docker_errors(f"create secret {name}"):
                created = self.api.create_secret(swarm_name, data, labels=specs.secret_labels(name, version))
        except Conflict:
            raise Conflict(
                f"Secret {name} is being changed by another request, or a Docker secret {swarm_name} exists outside OpenFaaS."
            ) from None
        return specs.SecretVersion(name, version, created["ID"], swarm_name)

    def list_secrets(self) -> list[str]:
        return sorted(self._secret_versions())

    def create_secret(self, name: str, data: bytes) -> None:
        if name in self._secret_versions():
            raise Conflict(f"Secret {name} already exists; use PUT to update it.")
        self._create_secret_version(name, 1, data)

    def _functions_mounting(self, name: str) -> list[str]:
        return sorted(
            svc["Spec"]["Name"] for svc in self._function_services() if name in specs.mounted_secret_names(svc)
        )

    def update_secret(self, name: str, data: bytes) -> None:
        versions = self._secret_versions().get(name)
        if not versions:
            raise NotFound(f"Secret {name} not found.")
        new = self._create_secret_version(name, versions[-1].version + 1, data)
        failed = []
        for function in self._functions_mounting(name):
            try:
                self._update_service(function, lambda svc: (specs.with_secret_version(svc["Spec"], new), {}))
            except GatewayError as exc:
                log.warning("function %s did not move to the new version of secret %s: %s", function, name, exc.message)
                failed.append(function)
        self._remove_versions(versions)
        if failed:
            raise BackendFailure(
                f"Secret {name} was updated, but functions {', '.join(failed)} could not be moved onto it; retry the update."
            )

    def _remove_versions(self, versions: list[specs.SecretVersion]) -> None:
        """Remove old versions; one still used by a rolling task is left for a later cleanup."""
        for version in versions:
            try:
                with docker_errors(f"remove secret {version.name}"):
                    self.api.remove_secret(version.swarm_id)
            except GatewayError as exc:
                log.info("secret version %s kept for now: %s", version.swarm_name, exc.message)

    def delete_secret(self, name: str) -> None:
        versions = self._secret_versions().get(name)
        if not versions:
            raise NotFound(f"Secret {name} not found.")
        users = self._functions_mounting(name)
        if users:
            raise Conflict(f"Secret {name} is in use by functions {', '.join(users)}; remove it from them first.")
        for version in versions:
            try:
                with docker_errors(f"remove secret {name}"):
                    self.api.remove_secret(version.swarm_id)
            except InvalidRequest as exc:
                # Docker says 400 when a service outside OpenFaaS still uses the secret.
                raise Conflict(f"Secret {name} is still in use: {exc.message}") from None
