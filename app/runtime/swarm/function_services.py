"""Functions as Swarm services: listing them with their available replicas, deploying, updating
(a start-first rolling update), scaling and removing them, and finding their replicas' addresses.

The service spec itself is built by the pure functions of ``app.runtime.swarm.specs``.
"""

from __future__ import annotations

import ipaddress
from typing import Callable

from app.domain.images import registry_auth_header
from app.domain.models import FunctionDeployment, FunctionEndpoints, FunctionStatus, ScalingPolicy
from app.errors import Conflict, InvalidRequest, NotFound
from app.runtime.swarm import naming, specs
from app.runtime.swarm.client import SwarmClient, docker_errors
from app.runtime.swarm.lookup import Lookup
from app.runtime.swarm.networks import Networks
from app.runtime.swarm.secret_versions import SwarmSecrets


class SwarmFunctions:
    """The ``Functions`` of the runtime over services labelled ``com.openfaas.function``."""

    def __init__(self, client: SwarmClient, lookup: Lookup, networks: Networks, secrets: SwarmSecrets):
        self.client = client
        self.lookup = lookup
        self.networks = networks
        self.secrets = secrets
        # Per ``available``, service ID -> (what its status was read from, the status): a status
        # is read again only when its service or one of its tasks changed (each change moves
        # their Version.Index), and the same object comes back meanwhile, which lets the API keep
        # its JSON too. Lists with and without tasks keep theirs apart: they alternate.
        self._statuses: dict[bool, dict[str, tuple[tuple, FunctionStatus]]] = {True: {}, False: {}}
        # Every function without their tasks, and the services list (the cache's, the same object
        # until a service changed) it was made from.
        self._listed: tuple[list[dict], list[FunctionStatus]] | None = None

    def list_functions(self, namespace: str | None = None, *, available: bool = True) -> list[FunctionStatus]:
        services = self.lookup.function_services(namespace=namespace)
        # nginx's table, cron and the autoscaler list every function without tasks every second
        # or few: from the same services, the same list, not a thousand statuses looked up and
        # sorted again.
        whole = namespace is None and not available
        if whole and self._listed and self._listed[0] is services:
            return list(self._listed[1])
        # One call for all tasks, whatever the number of functions; none when not wanted (the
        # services themselves are kept between Docker's events: service_cache.py).
        tasks = specs.tasks_by_service(self.lookup.running_tasks() if services and available else [])
        default = self.client.default_namespace
        read: dict[str, tuple[tuple, FunctionStatus]] = {}
        for service in services:
            own = tasks.get(service["ID"], [])
            counted = tuple((task["ID"], task["Version"]["Index"]) for task in own) if available else None
            source = (service["Version"]["Index"], counted)
            kept = self._statuses[available].get(service["ID"])
            read[service["ID"]] = kept if kept and kept[0] == source else (source, specs.function_status(service, own, default))
        # A list of every namespace shows which services are gone.
        self._statuses[available] = read if namespace is None else {**self._statuses[available], **read}
        listed = sorted((status for _, status in read.values()), key=lambda f: (f.namespace, f.name))
        if whole:
            self._listed = (services, listed)
        return list(listed)

    def get_function(self, name: str, namespace: str | None = None) -> FunctionStatus:
        service = self.lookup.function_service(name, namespace)
        return specs.function_status(service, self.lookup.running_tasks(service["ID"]), self.client.default_namespace)

    def function_addresses(
        self, name: str, namespace: str | None, resolve: Callable[[str], list[str]]
    ) -> list[str]:
        """What ``resolve`` answers for ``tasks.<service>``: Swarm's DNS gives the address of
        every running task on each network the caller shares. The edge containers share every
        namespace's network, where another namespace's function of the same name has that name
        as alias, so a default-namespace function's answer is cut to addresses outside the
        other namespaces' subnets."""
        namespace = self.client.namespace(namespace)
        default = self.client.default_namespace
        addresses = resolve(f"tasks.{naming.in_namespace(name, namespace, default)}")
        if namespace != default or not addresses:
            return addresses
        foreign = self.networks.subnets()
        return [address for address in addresses if not any(ipaddress.ip_address(address) in net for net in foreign)]

    def function_endpoints(self) -> list[FunctionEndpoints]:
        # Every task, not only those meant to run: a replica Swarm is stopping still answers.
        services = self.lookup.function_services()
        if not services:
            return []
        with docker_errors("list tasks"):
            tasks = specs.tasks_by_service(
                task for task in self.client.api.tasks() if task.get("Status", {}).get("State") == "running"
            )
        default = self.client.default_namespace
        return [specs.function_endpoints(service, tasks[service["ID"]], default) for service in services
                if service["ID"] in tasks]

    def roll_back(self, name: str, namespace: str, version: int, reason: str) -> None:
        service = self.lookup.function_service(name, namespace)
        if service["Version"]["Index"] != version or not specs.can_roll_back(service):
            raise Conflict(f"Function {name} changed since it was judged; not rolled back.")
        with self.lookup.changing(), docker_errors(f"roll back function {name}"):
            self.client.engine(
                "POST", f"/services/{service['ID']}/update", specs.rolled_back_spec(service, reason),
                params={"version": version},
            )

    def _deployment_spec(self, deployment: FunctionDeployment, replicas: int) -> tuple[dict, dict]:
        namespace = self.client.namespace(deployment.namespace)
        default = self.client.default_namespace
        versions = self.secrets.current_versions(namespace)
        missing = [name for name in deployment.secrets or [] if name not in versions]
        if missing:
            raise NotFound(
                f"Secret {missing[0]} not found in namespace {namespace}; create it before deploying {deployment.service}."
            )
        if namespace != default:
            network = self.networks.of_namespace(namespace)
            if deployment.network and deployment.network != network:
                raise InvalidRequest(
                    f"Invalid network: functions of namespace {namespace} are on its own network {network}."
                )
        else:
            network = deployment.network or self.client.config.functions_network
            if not deployment.network:
                self.networks.ensure_functions_network()
            elif not self.networks.exists(network):
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
        name, namespace = deployment.service, self.client.namespace(deployment.namespace)
        service_name = naming.in_namespace(name, namespace, self.client.default_namespace)
        if len(service_name) > naming.SERVICE_NAME_MAX:
            raise InvalidRequest(
                f"Invalid service: Swarm names function {name} of namespace {namespace} {service_name!r}, "
                f"longer than its limit of {naming.SERVICE_NAME_MAX} characters; use a shorter name."
            )
        replicas = ScalingPolicy.from_labels(deployment.labels).initial_replicas()
        spec, headers = self._deployment_spec(deployment, replicas)
        try:
            with self.lookup.changing(), docker_errors(f"create function {name}"):
                self.client.engine("POST", "/services/create", spec, headers=headers)
        except Conflict:
            if self.lookup.function_services(name, namespace):
                raise Conflict(f"Function {name} already exists in namespace {namespace}; use PUT to update it.") from None
            if self.lookup.service_exists(service_name):
                raise Conflict(f"A Docker service named {service_name} exists and is not an OpenFaaS function.") from None
            raise

    def update(self, deployment: FunctionDeployment) -> None:
        policy = ScalingPolicy.from_labels(deployment.labels)
        self.lookup.update_service(
            deployment.service,
            deployment.namespace,
            lambda service: self._deployment_spec(deployment, policy.replicas_after_update(specs.current_replicas(service))),
        )

    def delete(self, name: str, namespace: str | None = None) -> None:
        service = self.lookup.function_service(name, namespace)
        with self.lookup.changing(), docker_errors(f"remove function {name}"):
            self.client.api.remove_service(service["ID"])

    def scale(self, name: str, replicas: int, namespace: str | None = None) -> int:
        def change(service: dict) -> tuple[dict, dict]:
            policy = ScalingPolicy.from_labels(service["Spec"].get("Labels"))
            return specs.with_replicas(service["Spec"], policy.manual_scale(replicas)), {}

        return specs.current_replicas({"Spec": self.lookup.update_service(name, namespace, change)})
