"""Secrets as Swarm secrets. A Swarm secret cannot change, so an OpenFaaS secret is a series of
versions (``name-v1``, ``name-v2`` ...): an update creates the next version, moves every function
of the namespace that mounts the secret onto it, then removes the old ones.
"""

from __future__ import annotations

import logging

from app.domain.names import SECRET_NAME_MAX
from app.errors import BackendFailure, Conflict, GatewayError, InvalidRequest, NotFound
from app.runtime.swarm import naming, specs
from app.runtime.swarm.client import SwarmClient, docker_errors
from app.runtime.swarm.lookup import Lookup

log = logging.getLogger(__name__)


class SwarmSecrets:
    """The ``Secrets`` of the runtime over Swarm secrets labelled as the gateway's own."""

    def __init__(self, client: SwarmClient, lookup: Lookup):
        self.client = client
        self.lookup = lookup

    def _versions(self, namespace: str) -> dict[str, list[naming.SecretVersion]]:
        with docker_errors("list secrets"):
            found = self.client.api.secrets(filters={"label": f"{naming.SECRET_OWNER_LABEL}={naming.SECRET_OWNER}"})
        versions: dict[str, list[naming.SecretVersion]] = {}
        for secret in found:
            version = naming.read_secret_version(secret, self.client.default_namespace)
            if version and version.namespace == namespace:
                versions.setdefault(version.name, []).append(version)
        return {name: sorted(items, key=lambda v: v.version) for name, items in versions.items()}

    def current_versions(self, namespace: str) -> dict[str, naming.SecretVersion]:
        """The newest version of each secret of ``namespace``, by name."""
        return {name: items[-1] for name, items in self._versions(namespace).items()}

    def _create_version(self, name: str, namespace: str, version: int, data: bytes) -> naming.SecretVersion:
        swarm_name = naming.secret_swarm_name(name, version, namespace, self.client.default_namespace)
        try:
            with docker_errors(f"create secret {name}"):
                created = self.client.api.create_secret(
                    swarm_name, data, labels=naming.secret_labels(name, version, namespace)
                )
        except Conflict:
            raise Conflict(
                f"Secret {name} is being changed by another request, or a Docker secret {swarm_name} exists outside OpenFaaS."
            ) from None
        return naming.SecretVersion(name, version, created["ID"], swarm_name, namespace)

    def list_secrets(self, namespace: str | None = None) -> list[str]:
        return sorted(self._versions(self.client.namespace(namespace)))

    def create_secret(self, name: str, data: bytes, namespace: str | None = None) -> None:
        namespace = self.client.namespace(namespace)
        stem = naming.in_namespace(name, namespace, self.client.default_namespace)
        if len(stem) > SECRET_NAME_MAX:
            raise InvalidRequest(
                f"Invalid name: a secret of namespace {namespace} is stored as {stem!r}, longer than "
                f"{SECRET_NAME_MAX} characters (room for its version suffix); use a shorter name."
            )
        if name in self._versions(namespace):
            raise Conflict(f"Secret {name} already exists in namespace {namespace}; use PUT to update it.")
        self._create_version(name, namespace, 1, data)

    def update_secret(self, name: str, data: bytes, namespace: str | None = None) -> None:
        namespace = self.client.namespace(namespace)
        versions = self._versions(namespace).get(name)
        if not versions:
            raise NotFound(f"Secret {name} not found in namespace {namespace}.")
        new = self._create_version(name, namespace, versions[-1].version + 1, data)
        failed = []
        for function in self.lookup.functions_mounting(name, namespace):
            try:
                self.lookup.update_service(
                    function, namespace, lambda svc: (specs.with_secret_version(svc["Spec"], new), {})
                )
            except GatewayError as exc:
                log.warning("function %s did not move to the new version of secret %s: %s", function, name, exc.message)
                failed.append(function)
        self._remove_versions(versions)
        if failed:
            raise BackendFailure(
                f"Secret {name} was updated, but functions {', '.join(failed)} could not be moved onto it; retry the update."
            )

    def _remove_versions(self, versions: list[naming.SecretVersion]) -> None:
        """Remove old versions; one still used by a rolling task is left for a later cleanup."""
        for version in versions:
            try:
                with docker_errors(f"remove secret {version.name}"):
                    self.client.api.remove_secret(version.swarm_id)
            except GatewayError as exc:
                log.info("secret version %s kept for now: %s", version.swarm_name, exc.message)

    def delete_secret(self, name: str, namespace: str | None = None) -> None:
        namespace = self.client.namespace(namespace)
        versions = self._versions(namespace).get(name)
        if not versions:
            raise NotFound(f"Secret {name} not found in namespace {namespace}.")
        users = self.lookup.functions_mounting(name, namespace)
        if users:
            raise Conflict(f"Secret {name} is in use by functions {', '.join(users)}; remove it from them first.")
        for version in versions:
            try:
                with docker_errors(f"remove secret {name}"):
                    self.client.api.remove_secret(version.swarm_id)
            except InvalidRequest as exc:
                # Docker says 400 when a service outside OpenFaaS still uses the secret.
                raise Conflict(f"Secret {name} is still in use: {exc.message}") from None
