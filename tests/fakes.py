"""An in-memory Provider for fast unit tests of the HTTP layer.

It keeps services as Engine API dicts built by the real pure spec builders and reads them back
with the real ``function_status``, so only the Docker transport is faked.
"""

from __future__ import annotations

import itertools
import threading

from app.errors import BackendUnavailable, Conflict, NotFound
from app.models import FunctionDeployment, FunctionStatus, ScalingPolicy
from app.swarm import specs

_ids = itertools.count(1)


class FakeProvider:
    def __init__(self, namespace: str = "openfaas-fn", network: str = "func_functions"):
        self.namespace = namespace
        self.network = network
        self.services: dict[str, dict] = {}
        self.secrets: dict[str, specs.SecretVersion] = {}
        self.secret_data: dict[str, bytes] = {}
        self.healthy = True
        self.ready_checks = 0

    def check_health(self) -> None:
        if not self.healthy:
            raise BackendUnavailable("Docker is unreachable; could not report its state.")

    def ensure_ready(self) -> None:
        self.ready_checks += 1
        self.check_health()

    def _tasks(self) -> list[dict]:
        return [
            {
                "ServiceID": svc["ID"],
                "DesiredState": "running",
                "Status": {"State": "running"},
                "Spec": svc["Spec"]["TaskTemplate"],
            }
            for svc in self.services.values()
            for _ in range(specs.current_replicas(svc))
        ]

    def _service(self, name: str) -> dict:
        self.check_health()
        if name not in self.services:
            raise NotFound(f"Function {name} not found.")
        return self.services[name]

    def list_functions(self) -> list[FunctionStatus]:
        self.check_health()
        tasks = self._tasks()
        return [specs.function_status(svc, tasks, self.namespace) for _, svc in sorted(self.services.items())]

    def get_function(self, name: str) -> FunctionStatus:
        return specs.function_status(self._service(name), self._tasks(), self.namespace)

    def _spec(self, deployment: FunctionDeployment, replicas: int) -> dict:
        for secret in deployment.secrets or []:
            if secret not in self.secrets:
                raise NotFound(f"Secret {secret} not found.")
        return specs.build_service_spec(
            deployment,
            network=deployment.network or self.network,
            replicas=replicas,
            secrets=[self.secrets[name] for name in deployment.secrets or []],
        )

    def deploy(self, deployment: FunctionDeployment) -> None:
        self.check_health()
        if deployment.service in self.services:
            raise Conflict(f"Function {deployment.service} already exists.")
        spec = self._spec(deployment, ScalingPolicy.from_labels(deployment.labels).initial_replicas())
        self.services[deployment.service] = {"ID": f"svc{next(_ids)}", "Spec": spec, "CreatedAt": "2026-01-01T00:00:00Z"}

    def update(self, deployment: FunctionDeployment) -> None:
        service = self._service(deployment.service)
        replicas = ScalingPolicy.from_labels(deployment.labels).replicas_after_update(specs.current_replicas(service))
        service["Spec"] = self._spec(deployment, replicas)

    def delete(self, name: str) -> None:
        self._service(name)
        del self.services[name]

    def scale(self, name: str, replicas: int) -> int:
        service = self._service(name)
        policy = ScalingPolicy.from_labels(service["Spec"]["Labels"])
        service["Spec"] = specs.with_replicas(service["Spec"], policy.manual_scale(replicas))
        return specs.current_replicas(service)

    def list_secrets(self) -> list[str]:
        self.check_health()
        return sorted(self.secrets)

    def create_secret(self, name: str, data: bytes) -> None:
        self.check_health()
        if name in self.secrets:
            raise Conflict(f"Secret {name} already exists.")
        self.secrets[name] = specs.SecretVersion(name, 1, f"sec{next(_ids)}", specs.secret_swarm_name(name, 1))
        self.secret_data[name] = data

    def update_secret(self, name: str, data: bytes) -> None:
        self.check_health()
        if name not in self.secrets:
            raise NotFound(f"Secret {name} not found.")
        version = self.secrets[name].version + 1
        self.secrets[name] = new = specs.SecretVersion(name, version, f"sec{next(_ids)}", specs.secret_swarm_name(name, version))
        self.secret_data[name] = data
        for service in self.services.values():
            if name in specs.mounted_secret_names(service):
                service["Spec"] = specs.with_secret_version(service["Spec"], new)

    def delete_secret(self, name: str) -> None:
        self.check_health()
        if name not in self.secrets:
            raise NotFound(f"Secret {name} not found.")
        users = sorted(n for n, svc in self.services.items() if name in specs.mounted_secret_names(svc))
        if users:
            raise Conflict(f"Secret {name} is in use by functions {', '.join(users)}.")
        del self.secrets[name], self.secret_data[name]


class FakeLogStream:
    """Yields its messages, then (when ``hold`` is set) waits until closed, like a quiet follow."""

    def __init__(self, messages: list, hold: bool):
        self.messages = messages
        self.hold = hold
        self.closed = threading.Event()

    def __iter__(self):
        yield list(self.messages)
        if self.hold:
            self.closed.wait(30)

    def close(self) -> None:
        self.closed.set()


class FakeLogSource:
    """Serves preset messages for functions known to the FakeProvider."""

    def __init__(self, provider: FakeProvider):
        self.provider = provider
        self.messages: dict[str, list] = {}
        self.hold = False
        self.opened: list[tuple] = []

    def open(self, request):
        self.provider._service(request.name)
        stream = FakeLogStream(self.messages.get(request.name, []), self.hold)
        self.opened.append((request, stream))
        return stream
