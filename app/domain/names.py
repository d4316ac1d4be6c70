"""The names clients give functions, secrets and namespaces, and how a request names a function.

One place for the rules: the schemas validate body fields with them, the routes check path
segments with them, and the proxy uses them to tell which calls can be meant for a function here.
Function names are DNS labels because Swarm makes each one a host name on its namespace's
network; namespace names are DNS labels too (OpenFaaS's own rule, and part of a network name);
secret names leave room for the version suffix this gateway adds (``app.runtime.swarm.specs``).

A function *reference* is how a call, an alert or a metric names a function: ``name`` in the
default namespace, ``name.namespace`` in any other (OpenFaaS's ``function_name`` label).
"""

from __future__ import annotations

import re

from app.errors import InvalidRequest

FUNCTION_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
FUNCTION_NAME_MAX = 63
SECRET_NAME = re.compile(r"[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?")
# Swarm names are at most 64 characters and each secret version adds a "-v<n>" suffix.
SECRET_NAME_MAX = 50
NAMESPACE_MAX = 63


def function_name_error(name: str) -> str | None:
    """Return why ``name`` is not a valid function name, or None when it is."""
    if len(name) > FUNCTION_NAME_MAX or not FUNCTION_NAME.fullmatch(name):
        return (
            f"{name!r} is not a valid function name: use at most {FUNCTION_NAME_MAX} lower-case "
            "letters, digits and '-', starting and ending with a letter or digit"
        )
    return None


def secret_name_error(name: str) -> str | None:
    """Return why ``name`` is not a valid secret name, or None when it is."""
    if len(name) > SECRET_NAME_MAX or not SECRET_NAME.fullmatch(name):
        return (
            f"{name!r} is not a valid secret name: use at most {SECRET_NAME_MAX} letters, digits, "
            "'-', '_' and '.', starting and ending with a letter or digit"
        )
    return None


def namespace_error(name: str) -> str | None:
    """Return why ``name`` is not a valid namespace name, or None when it is."""
    if len(name) > NAMESPACE_MAX or not FUNCTION_NAME.fullmatch(name):
        return (
            f"{name!r} is not a valid namespace: use at most {NAMESPACE_MAX} lower-case letters, digits "
            "and '-', starting and ending with a letter or digit"
        )
    return None


def require_namespace(name: str) -> str:
    """Return ``name`` when it is a valid namespace name; raise InvalidRequest (400) otherwise."""
    error = namespace_error(name)
    if error:
        raise InvalidRequest(f"Invalid namespace: {error}.")
    return name


def require_function_name(name: str) -> str:
    """Return ``name`` when it is a valid function name; raise InvalidRequest (400) otherwise."""
    error = function_name_error(name)
    if error:
        raise InvalidRequest(error[0].upper() + error[1:] + ".")
    return name


def function_reference(name: str, namespace: str, default: str) -> str:
    """How calls, alerts and metrics name function ``name`` of ``namespace``: the bare name in
    the ``default`` namespace (as before namespaces existed), ``name.namespace`` elsewhere."""
    return name if namespace == default else f"{name}.{namespace}"


def parse_reference(reference: str, default: str) -> str | None:
    """The canonical reference (``function_reference``) for a ``name[.namespace]`` a client
    wrote, or None when no function can be meant: an invalid name or namespace."""
    name, dot, namespace = reference.partition(".")
    if function_name_error(name) or (dot and namespace_error(namespace)):
        return None
    return function_reference(name, namespace if dot else default, default)


def split_reference(reference: str) -> tuple[str, str | None]:
    """The name and namespace of a canonical reference; None stands for the default namespace."""
    name, dot, namespace = reference.partition(".")
    return name, namespace if dot else None
