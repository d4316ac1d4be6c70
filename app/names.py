"""The names clients give functions and secrets, and how a request names a function.

One place for the rules: the schemas validate body fields with them, the routes check path
segments with them, and the proxy uses them to tell which calls can be meant for a function here.
Function names are DNS labels because Swarm makes each one a host name on the functions network;
secret names leave room for the version suffix this gateway adds (``app.swarm.specs``).
"""

from __future__ import annotations

import re

from app.errors import InvalidRequest

FUNCTION_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
FUNCTION_NAME_MAX = 63
SECRET_NAME = re.compile(r"[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?")
# Swarm names are at most 64 characters and each secret version adds a "-v<n>" suffix.
SECRET_NAME_MAX = 50


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


def require_function_name(name: str) -> str:
    """Return ``name`` when it is a valid function name; raise InvalidRequest (400) otherwise."""
    error = function_name_error(name)
    if error:
        raise InvalidRequest(error[0].upper() + error[1:] + ".")
    return name


def function_in(reference: str, namespace: str) -> str | None:
    """The function a ``name[.namespace]`` reference names in ``namespace``, or None when no
    function there can be meant: an invalid name, or another namespace."""
    name, _, named_namespace = reference.partition(".")
    if function_name_error(name) or named_namespace not in ("", namespace):
        return None
    return name
