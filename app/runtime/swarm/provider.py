"""The Swarm service layer: the only module that talks to Docker.

``SwarmProvider`` implements ``app.runtime.interfaces.Provider`` with the docker SDK's low-level client.
It only ever reads, changes or removes services labelled ``com.openfaas.function``, secrets
labelled ``com.openfaas.owner=openfaas``, and networks and configs labelled
``com.openfaas.namespace`` under the names ``app.runtime.swarm.specs`` gives namespaces; a name that
belongs to anything else is "not found". How namespaces map onto Swarm is in ``app.runtime.swarm.specs``.
Docker failures become domain errors in ``docker_errors``: unreachable or not a manager is
BackendUnavailable (503); refusals keep Docker's own explanation in the sentence.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import threading
import time
from typing import Callable, Iterator

import docker
import requests
from docker.errors import APIError, DockerException
from urllib3.util import Retry

from app.config import Config
from app.domain.images import registry_auth_header
from app.domain.models import (
    LABEL_FUNCTION,
    LABEL_NAMESPACE,
    FunctionDeployment,
    FunctionStatus,
    Instance,
    Namespace,
    ReplicaStats,
    ScalingPolicy,
)
from app.domain.names import SECRET_NAME_MAX
from app.errors import BackendFailure, BackendUnavailable, Conflict, GatewayError, InvalidRequest, NotFound
from app.runtime.swarm import readings, specs

log = logging.getLogger(__name__)

# Pinned rather than negotiated so that building the client needs no running daemon; 1.41 is
# what Debian's docker.io (20.10) speaks, and newer engines still accept it.
DOCKER_API_VERSION = "1.41"
# A concurrent scale or update changes the service version under us; re-read and try again.
_UPDATE_ATTEMPTS = 3
# How often the edge containers' attachments are checked again (a recreated nginx has none).
EDGE_REFRESH = 10.0
# How long the namespaces' subnets are trusted: a namespace created by another process is seen
# within this (its functions take longer than that to start).
SUBNETS_TTL = 2.0


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
        self.default_namespace = config.namespace
        self._edge_checked = float("-inf")
        self._edge_lock = threading.Lock()
        self._subnets: tuple[float, list[ipaddress.IPv4Network]] = (float("-inf"), [])

    def _namespace(self, namespace: str | None) -> str:
        return namespace or self.default_namespace

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
        self.refresh_edge(force=True)

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

    def _function_services(self, name: str | None = None, namespace: str | None = None) -> list[dict]:
        """Function services, all or those of ``namespace`` (all namespaces when None), or the
        one of function ``name`` in ``namespace`` (the default when None)."""
        filters: dict = {"label": LABEL_FUNCTION}
        if name is not None:
            namespace = self._namespace(namespace)
            filters["name"] = specs.in_namespace(name, namespace, self.default_namespace)
        with docker_errors("list services"):
            services = self.api.services(filters=filters)
        # The name filter matches prefixes; only the exact name and namespace are the function.
        return [
            svc for svc in services
            if (name is None or specs.function_identity(svc, self.default_namespace)[0] == name)
            and (namespace is None or specs.function_identity(svc, self.default_namespace)[1] == namespace)
        ]

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

    def function_service(self, name: str, namespace: str | None = None) -> dict:
        """The service of function ``name`` of ``namespace`` (None: the default).

        Raises NotFound (404) unless it is one of ours.
        """
        found = self._function_services(name, namespace)
        if not found:
            raise NotFound(f"Function {name} not found in namespace {self._namespace(namespace)}.")
        return found[0]

    def function_task(self, name: str, task_id: str, namespace: str | None = None) -> dict:
        """A task of function ``name`` of ``namespace`` by full or unique partial ID.

        Raises NotFound (404) when the function has no such task.
        """
        service = self.function_service(name, namespace)
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

    def list_functions(self, namespace: str | None = None) -> list[FunctionStatus]:
        services = self._function_services(namespace=namespace)
        # One call for all tasks, whatever the number of functions.
        tasks = self._running_tasks() if services else []
        default = self.default_namespace
        return sorted(
            (specs.function_status(svc, tasks, default) for svc in services), key=lambda f: (f.namespace, f.name)
        )

    def get_function(self, name: str, namespace: str | None = None) -> FunctionStatus:
        service = self.function_service(name, namespace)
        return specs.function_status(service, self._running_tasks(service["ID"]), self.default_namespace)

    def function_addresses(
        self, name: str, namespace: str | None, resolve: Callable[[str], list[str]]
    ) -> list[str]:
        """What ``resolve`` answers for ``tasks.<service>``: Swarm's DNS gives the address of
        every running task on each network the caller shares. The edge containers share every
        namespace's network, where another namespace's function of the same name has that name
        as alias, so a default-namespace function's answer is cut to addresses outside the
        other namespaces' subnets."""
        namespace = self._namespace(namespace)
        addresses = resolve(f"tasks.{specs.in_namespace(name, namespace, self.default_namespace)}")
        if namespace != self.default_namespace or not addresses:
            return addresses
        foreign = self._namespace_subnets()
        return [address for address in addresses if not any(ipaddress.ip_address(address) in net for net in foreign)]

    def _namespace_subnets(self) -> list[ipaddress.IPv4Network]:
        """The subnets of the other namespaces' networks, read again every SUBNETS_TTL seconds."""
        with self._edge_lock:
            if time.monotonic() < self._subnets[0]:
                return self._subnets[1]
        subnets = [
            ipaddress.ip_network(config["Subnet"], strict=False)
            for network in self._namespace_networks().values()
            for config in (network.get("IPAM") or {}).get("Config") or []
            if config.get("Subnet")
        ]
        with self._edge_lock:
            self._subnets = (time.monotonic() + SUBNETS_TTL, subnets)
        return subnets

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

    def replica_stats(self, name: str | None = None, namespace: str | None = None) -> list[ReplicaStats]:
        """Counters of every running replica whose container this node's Docker can read, of
        function ``name`` of ``namespace`` (None: the default) or of every function; replicas
        on other nodes are left out. One stats call per replica.

        Raises NotFound (404) for an unknown ``name``, BackendUnavailable (503).
        """
        services = [self.function_service(name, namespace)] if name is not None else self._function_services()
        if not services:
            return []
        owners = {svc["ID"]: svc for svc in services}
        tasks = self._running_tasks(services[0]["ID"] if name is not None else None)
        found = []
        for task in tasks:
            service = owners.get(task.get("ServiceID"))
            if service is None or not readings.is_running(task):
                continue
            stats = self._stats(task, *specs.function_identity(service, self.default_namespace))
            if stats is not None:
                found.append(stats)
        return found

    def instances(self, name: str, namespace: str | None = None) -> list[Instance]:
        """Each slot's current task with the exit of its last ended one; containers on this node
        are inspected (health, start time) and measured, the others reported as unmeasured.

        Raises NotFound (404) for an unknown function, BackendUnavailable (503).
        """
        service = self.function_service(name, namespace)
        namespace = self._namespace(namespace)
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
        namespace = self._namespace(deployment.namespace)
        default = self.default_namespace
        versions = self._current_secret_versions(namespace)
        missing = [name for name in deployment.secrets or [] if name not in versions]
        if missing:
            raise NotFound(
                f"Secret {missing[0]} not found in namespace {namespace}; create it before deploying {deployment.service}."
            )
        if namespace != default:
            network = self._namespace_network(namespace)
            if deployment.network and deployment.network != network:
                raise InvalidRequest(
                    f"Invalid network: functions of namespace {namespace} are on its own network {network}."
                )
        else:
            network = deployment.network or self.config.functions_network
            if not deployment.network:
                self._ensure_functions_network()
            elif not self._network_exists(network):
                raise InvalidRequest(f"Invalid network: network {network} does not exist.")
        spec = specs.build_service_spec(
            deployment,
            namespace=namespace,
            default=default,
            network=network,
            replicas=replicas,
            secrets=[versions[name] for name in deployment.secrets or []],
        )
        headers = {}
        if deployment.registry_auth:
            headers["X-Registry-Auth"] = registry_auth_header(deployment.registry_auth, deployment.image)
        return spec, headers

    def deploy(self, deployment: FunctionDeployment) -> None:
        name, namespace = deployment.service, self._namespace(deployment.namespace)
        service_name = specs.in_namespace(name, namespace, self.default_namespace)
        if len(service_name) > specs.SERVICE_NAME_MAX:
            raise InvalidRequest(
                f"Invalid service: Swarm names function {name} of namespace {namespace} {service_name!r}, "
                f"longer than its limit of {specs.SERVICE_NAME_MAX} characters; use a shorter name."
            )
        replicas = ScalingPolicy.from_labels(deployment.labels).initial_replicas()
        spec, headers = self._deployment_spec(deployment, replicas)
        try:
            with docker_errors(f"create function {name}"):
                self._engine("POST", "/services/create", spec, headers=headers)
        except Conflict:
            if self._function_services(name, namespace):
                raise Conflict(f"Function {name} already exists in namespace {namespace}; use PUT to update it.") from None
            if self._service_exists(service_name):
                raise Conflict(f"A Docker service named {service_name} exists and is not an OpenFaaS function.") from None
            raise

    def _service_exists(self, name: str) -> bool:
        with docker_errors("list services"):
            return any(svc["Spec"]["Name"] == name for svc in self.api.services(filters={"name": name}))

    def _update_service(
        self, name: str, namespace: str | None, change: Callable[[dict], tuple[dict, dict]]
    ) -> dict:
        """Apply ``change(service) -> (spec, headers)`` to a function, retrying lost races."""
        for attempt in range(_UPDATE_ATTEMPTS):
            service = self.function_service(name, namespace)
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
            deployment.namespace,
            lambda service: self._deployment_spec(deployment, policy.replicas_after_update(specs.current_replicas(service))),
        )

    def delete(self, name: str, namespace: str | None = None) -> None:
        service = self.function_service(name, namespace)
        with docker_errors(f"remove function {name}"):
            self.api.remove_service(service["ID"])

    def scale(self, name: str, replicas: int, namespace: str | None = None) -> int:
        def change(service: dict) -> tuple[dict, dict]:
            policy = ScalingPolicy.from_labels(service["Spec"].get("Labels"))
            return specs.with_replicas(service["Spec"], policy.manual_scale(replicas)), {}

        return specs.current_replicas({"Spec": self._update_service(name, namespace, change)})

    # secrets

    def _secret_versions(self, namespace: str) -> dict[str, list[specs.SecretVersion]]:
        with docker_errors("list secrets"):
            found = self.api.secrets(filters={"label": f"{specs.SECRET_OWNER_LABEL}={specs.SECRET_OWNER}"})
        versions: dict[str, list[specs.SecretVersion]] = {}
        for secret in found:
            version = specs.read_secret_version(secret, self.default_namespace)
            if version and version.namespace == namespace:
                versions.setdefault(version.name, []).append(version)
        return {name: sorted(items, key=lambda v: v.version) for name, items in versions.items()}

    def _current_secret_versions(self, namespace: str) -> dict[str, specs.SecretVersion]:
        return {name: items[-1] for name, items in self._secret_versions(namespace).items()}

    def _create_secret_version(self, name: str, namespace: str, version: int, data: bytes) -> specs.SecretVersion:
        swarm_name = specs.secret_swarm_name(name, version, namespace, self.default_namespace)
        try:
            with docker_errors(f"create secret {name}"):
                created = self.api.create_secret(swarm_name, data, labels=specs.secret_labels(name, version, namespace))
        except Conflict:
            raise Conflict(
                f"Secret {name} is being changed by another request, or a Docker secret {swarm_name} exists outside OpenFaaS."
            ) from None
        return specs.SecretVersion(name, version, created["ID"], swarm_name, namespace)

    def list_secrets(self, namespace: str | None = None) -> list[str]:
        return sorted(self._secret_versions(self._namespace(namespace)))

    def create_secret(self, name: str, data: bytes, namespace: str | None = None) -> None:
        namespace = self._namespace(namespace)
        stem = specs.in_namespace(name, namespace, self.default_namespace)
        if len(stem) > SECRET_NAME_MAX:
            raise InvalidRequest(
                f"Invalid name: a secret of namespace {namespace} is stored as {stem!r}, longer than "
                f"{SECRET_NAME_MAX} characters (room for its version suffix); use a shorter name."
            )
        if name in self._secret_versions(namespace):
            raise Conflict(f"Secret {name} already exists in namespace {namespace}; use PUT to update it.")
        self._create_secret_version(name, namespace, 1, data)

    def _functions_mounting(self, name: str, namespace: str) -> list[str]:
        return sorted(
            specs.function_identity(svc, self.default_namespace)[0]
            for svc in self._function_services(namespace=namespace)
            if name in specs.mounted_secret_names(svc)
        )

    def update_secret(self, name: str, data: bytes, namespace: str | None = None) -> None:
        namespace = self._namespace(namespace)
        versions = self._secret_versions(namespace).get(name)
        if not versions:
            raise NotFound(f"Secret {name} not found in namespace {namespace}.")
        new = self._create_secret_version(name, namespace, versions[-1].version + 1, data)
        failed = []
        for function in self._functions_mounting(name, namespace):
            try:
                self._update_service(function, namespace, lambda svc: (specs.with_secret_version(svc["Spec"], new), {}))
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

    def delete_secret(self, name: str, namespace: str | None = None) -> None:
        namespace = self._namespace(namespace)
        versions = self._secret_versions(namespace).get(name)
        if not versions:
            raise NotFound(f"Secret {name} not found in namespace {namespace}.")
        users = self._functions_mounting(name, namespace)
        if users:
            raise Conflict(f"Secret {name} is in use by functions {', '.join(users)}; remove it from them first.")
        for version in versions:
            try:
                with docker_errors(f"remove secret {name}"):
                    self.api.remove_secret(version.swarm_id)
            except InvalidRequest as exc:
                # Docker says 400 when a service outside OpenFaaS still uses the secret.
                raise Conflict(f"Secret {name} is still in use: {exc.message}") from None

    # namespaces

    def _namespace_network(self, namespace: str) -> str:
        return specs.namespace_network(namespace, self.config.functions_network, self.default_namespace)

    def _namespace_networks(self) -> dict[str, dict]:
        """The networks of the namespaces other than the default, by namespace."""
        with docker_errors("list networks"):
            networks = self.api.networks(filters={"label": LABEL_NAMESPACE})
        found = {}
        for network in networks:
            namespace = (network.get("Labels") or {}).get(LABEL_NAMESPACE, "")
            # Only the name this gateway gives the namespace's network: not another gateway's.
            if namespace != self.default_namespace and network["Name"] == self._namespace_network(namespace):
                found[namespace] = network
        return found

    def namespace_exists(self, namespace: str) -> bool:
        return namespace == self.default_namespace or namespace in self._namespace_networks()

    def _namespace_config(self, namespace: str) -> dict | None:
        name = self._namespace_network(namespace)
        with docker_errors("list configs"):
            configs = self.api.configs(filters={"name": name, "label": f"{LABEL_NAMESPACE}={namespace}"})
        # The name filter matches prefixes.
        return next((config for config in configs if config["Spec"]["Name"] == name), None)

    def list_namespaces(self) -> list[str]:
        return sorted({self.default_namespace, *self._namespace_networks()})

    def get_namespace(self, namespace: str) -> Namespace:
        if not self.namespace_exists(namespace):
            raise NotFound(f"Namespace {namespace} not found.")
        config = self._namespace_config(namespace)
        return specs.read_namespace(namespace, config["Spec"].get("Labels") if config else None)

    def create_namespace(self, namespace: Namespace) -> None:
        name = namespace.name
        if self.namespace_exists(name):
            raise Conflict(f"Namespace {name} already exists; use PUT to change its labels and annotations.")
        network = self._namespace_network(name)
        try:
            with docker_errors(f"create the network of namespace {name}"):
                self.api.create_network(
                    network, driver="overlay", attachable=True, labels=specs.namespace_network_labels(name),
                    check_duplicate=True,
                )
        except Conflict:
            raise Conflict(f"A Docker network named {network} exists and is not namespace {name}'s.") from None
        self._store_namespace(namespace)
        self._subnets = (float("-inf"), [])
        self._attach_edge({network})

    def _store_namespace(self, namespace: Namespace) -> None:
        """Write the namespace's labels and annotations into its config, created when missing."""
        labels = specs.namespace_config_labels(namespace)
        config = self._namespace_config(namespace.name)
        with docker_errors(f"store the labels of namespace {namespace.name}"):
            if config is None:
                self.api.create_config(self._namespace_network(namespace.name), namespace.name.encode(), labels=labels)
            else:
                # Only a config's labels can change; the update names its current version.
                self._engine(
                    "POST", f"/configs/{config['ID']}/update", {**config["Spec"], "Labels": labels},
                    params={"version": config["Version"]["Index"]},
                )

    def update_namespace(self, namespace: Namespace) -> None:
        if not self.namespace_exists(namespace.name):
            raise NotFound(f"Namespace {namespace.name} not found.")
        self._store_namespace(namespace)

    def delete_namespace(self, namespace: str) -> None:
        if namespace == self.default_namespace:
            raise InvalidRequest(f"Invalid namespace: {namespace} is the default namespace and cannot be deleted.")
        network = self._namespace_networks().get(namespace)
        if network is None:
            raise NotFound(f"Namespace {namespace} not found.")
        left = [f"function {status.name}" for status in self.list_functions(namespace)]
        left += [f"secret {name}" for name in self.list_secrets(namespace)]
        if left:
            raise Conflict(f"Namespace {namespace} still holds {', '.join(left)}; remove them first.")
        # The config goes first: from then on no gateway process attaches its edge to the
        # network (refresh_edge), so the detach below is the last.
        config = self._namespace_config(namespace)
        if config is not None:
            with docker_errors(f"remove the labels of namespace {namespace}"):
                self.api.remove_config(config["ID"])
        # A container that stays attached makes the removal below a 409, so a retry finishes.
        self._detach_edge(network["Name"])
        try:
            with docker_errors(f"remove the network of namespace {namespace}"):
                self.api.remove_network(network["Id"])
        except InvalidRequest as exc:
            # A removed function's task may hold the network for the moment it takes to stop.
            raise Conflict(f"Namespace {namespace} is still in use, try again shortly: {exc.message}") from None

    # the edge: the containers that call functions of every namespace

    def _edge_containers(self) -> list[dict]:
        if not self.config.edge_label:
            return []
        with docker_errors("list the edge containers"):
            return self.api.containers(filters={"label": self.config.edge_label})

    def _detach_edge(self, network: str) -> None:
        """Detach every edge container on this node from ``network``, gone or not."""
        for container in self._edge_containers():
            if network in container["NetworkSettings"]["Networks"]:
                with contextlib.suppress(GatewayError), docker_errors(f"detach a container from network {network}"):
                    self.api.disconnect_container_from_network(container["Id"], network)

    def _attach_edge(self, networks: set[str]) -> None:
        """Attach every edge container on this node to each of ``networks`` it is not on."""
        if not networks:
            return
        for container in self._edge_containers():
            for network in networks - set(container["NetworkSettings"]["Networks"]):
                try:
                    with docker_errors(f"attach a container to network {network}"):
                        self.api.connect_container_to_network(container["Id"], network)
                except Conflict:
                    pass  # attached meanwhile by another gateway process: what we wanted

    def _configured_namespaces(self) -> set[str]:
        """The namespaces whose config exists: all but those being created or deleted."""
        with docker_errors("list configs"):
            configs = self.api.configs(filters={"label": LABEL_NAMESPACE})
        found = set()
        for config in configs:
            namespace = config["Spec"]["Labels"][LABEL_NAMESPACE]
            # Only the name this gateway gives the namespace's config: not another gateway's.
            if config["Spec"]["Name"] == self._namespace_network(namespace):
                found.add(namespace)
        return found

    def refresh_edge(self, force: bool = False) -> None:
        """Attach the edge containers to every namespace's network they are not on (a container
        recreated since has none); at most every EDGE_REFRESH seconds unless ``force``.

        A namespace being deleted meanwhile (its config goes first) is left alone, or left again
        if the attach came too late: a container attached to a network Swarm has just removed
        keeps a copy of it on the node, which would list the namespace once more."""
        with self._edge_lock:
            if not force and time.monotonic() - self._edge_checked < EDGE_REFRESH:
                return
            self._edge_checked = time.monotonic()
        if not self.config.edge_label:
            return
        configured = self._configured_namespaces()
        networks = {ns: net["Name"] for ns, net in self._namespace_networks().items() if ns in configured}
        failed = None
        try:
            self._attach_edge(set(networks.values()))
        except GatewayError as exc:
            failed = exc
        deleted = set(networks) - self._configured_namespaces()
        for namespace in deleted:
            self._detach_edge(networks[namespace])
        if failed is not None and not deleted:
            raise failed
