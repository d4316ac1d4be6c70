"""How OpenFaaS objects are named and labelled on Swarm (pure functions).

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

from dataclasses import dataclass

from app.domain.models import ANNOTATION_PREFIX, LABEL_FAAS_FUNCTION, LABEL_FUNCTION, LABEL_NAMESPACE, Namespace

SECRET_OWNER_LABEL = "com.openfaas.owner"
SECRET_OWNER = "openfaas"
SECRET_NAME_LABEL = "com.openfaas.secret"
SECRET_VERSION_LABEL = "com.openfaas.secret.version"
# Swarm's longest service name.
SERVICE_NAME_MAX = 63


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
