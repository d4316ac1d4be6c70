"""Finding the gateway's own Swarm services and tasks, and changing a service safely.

Every part of the adapter that reads a function's service or tasks does it here, so ownership
(only services labelled ``com.openfaas.function``, with exactly the name and namespace asked
for) is decided in one place. The list of every function service comes from a per-process
``ServiceCache``; every change of a function service goes through ``changing``, so no list
taken before it is kept.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

from app.domain.models import LABEL_FUNCTION
from app.errors import GatewayError, NotFound
from app.runtime.swarm import naming, specs
from app.runtime.swarm.client import SwarmClient, docker_errors
from app.runtime.swarm.service_cache import ServiceCache

# A concurrent scale or update changes the service version under us; re-read and try again.
UPDATE_ATTEMPTS = 3


class Lookup:
    """Function services and their tasks, read through ``client``."""

    def __init__(self, client: SwarmClient):
        self.client = client
        self.cache = ServiceCache(client, self._list_all, os.path.join(client.config.state_dir, "services.stamp"))

    def _list_all(self) -> list[dict]:
        with docker_errors("list services"):
            return self.client.api.services(filters={"label": LABEL_FUNCTION})

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """Around a create, update or removal of a function service: whatever came of it, no
        process keeps a list of services taken before."""
        try:
            yield
        finally:
            self.cache.changed()

    def function_services(self, name: str | None = None, namespace: str | None = None) -> list[dict]:
        """Function services, all or those of ``namespace`` (all namespaces when None), or the
        one of function ``name`` in ``namespace`` (the default when None). All of them come
        from the cache (shared dicts, and with neither argument the cache's own list, which
        stays the same object until something changed: never change them); one by name from
        Docker."""
        default = self.client.default_namespace
        if name is None and namespace is None:
            return self.cache.services()
        if name is None:
            services = self.cache.services()
        else:
            namespace = self.client.namespace(namespace)
            filters = {"label": LABEL_FUNCTION, "name": naming.in_namespace(name, namespace, default)}
            with docker_errors("list services"):
                services = self.client.api.services(filters=filters)
        # The name filter matches prefixes; only the exact name and namespace are the function.
        return [
            svc for svc in services
            if (name is None or naming.function_identity(svc, default)[0] == name)
            and (namespace is None or naming.function_identity(svc, default)[1] == namespace)
        ]

    def owned_service(self, service_id: str) -> dict:
        """The service with ID ``service_id``. Raises NotFound (404) unless it is a function."""
        with docker_errors("inspect a service"):
            service = self.client.api.inspect_service(service_id)
        if LABEL_FUNCTION not in (service["Spec"].get("Labels") or {}):
            raise NotFound(f"Service {service_id} is not a function.")
        return service

    def function_service(self, name: str, namespace: str | None = None) -> dict:
        """The service of function ``name`` of ``namespace`` (None: the default).

        Raises NotFound (404) unless it is one of ours.
        """
        found = self.function_services(name, namespace)
        if not found:
            raise NotFound(f"Function {name} not found in namespace {self.client.namespace(namespace)}.")
        return found[0]

    def function_task(self, name: str, task_id: str, namespace: str | None = None) -> dict:
        """A task of function ``name`` of ``namespace`` by full or unique partial ID.

        Raises NotFound (404) when the function has no such task.
        """
        service = self.function_service(name, namespace)
        with docker_errors("list tasks"):
            tasks = self.client.api.tasks(filters={"service": service["ID"], "id": task_id})
        exact = [task for task in tasks if task["ID"] == task_id]
        if exact or len(tasks) == 1:
            return (exact or tasks)[0]
        raise NotFound(f"Instance {task_id} of function {name} not found.")

    def running_tasks(self, service_id: str | None = None) -> list[dict]:
        """The tasks meant to run, of one service or of all."""
        filters: dict = {"desired-state": "running"}
        if service_id is not None:
            filters["service"] = service_id
        with docker_errors("list tasks"):
            return self.client.api.tasks(filters=filters)

    def service_exists(self, name: str) -> bool:
        """Whether any service, ours or not, has exactly this Swarm name."""
        with docker_errors("list services"):
            return any(svc["Spec"]["Name"] == name for svc in self.client.api.services(filters={"name": name}))

    def functions_mounting(self, secret: str, namespace: str) -> list[str]:
        """The names of the functions of ``namespace`` that mount secret ``secret``, sorted."""
        return sorted(
            naming.function_identity(svc, self.client.default_namespace)[0]
            for svc in self.function_services(namespace=namespace)
            if secret in specs.mounted_secret_names(svc)
        )

    def update_service(self, name: str, namespace: str | None, change: Callable[[dict], tuple[dict, dict]]) -> dict:
        """Apply ``change(service) -> (spec, headers)`` to a function, retrying lost races;
        return the spec sent (or found unchanged).

        Raises NotFound (404) for an unknown function and the errors of ``docker_errors``.
        """
        for attempt in range(UPDATE_ATTEMPTS):
            service = self.function_service(name, namespace)
            spec, headers = change(service)
            if spec == service["Spec"] and not headers:
                # Nothing to change: an update would still restart nothing but bump the version,
                # and concurrent identical requests (scale from zero) should cost one update.
                return spec
            try:
                with self.changing(), docker_errors(f"update function {name}"):
                    self.client.engine(
                        "POST",
                        f"/services/{service['ID']}/update",
                        spec,
                        params={"version": service["Version"]["Index"]},
                        headers=headers,
                    )
                return spec
            except GatewayError as exc:
                if "out of sequence" not in exc.message or attempt == UPDATE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
