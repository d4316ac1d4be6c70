"""Image references and registry credentials, as pure functions.

``parse_image`` follows Docker's reference grammar closely enough to find the registry host of
``nginx``, ``functions/alpine:latest``, ``docker.io/x/y``, ``registry:5000/team/fn@sha256:...``
and ``localhost/fn``; ``registry_auth_header`` turns the deployment's ``registryAuth``
(base64 ``user:password``) into the ``X-Registry-Auth`` header Docker wants for that host.
Both raise ValueError with a sentence fragment; the schema names the field.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
# The server address Docker's own clients store Docker Hub credentials under.
DOCKER_HUB_AUTH_ADDRESS = "https://index.docker.io/v1/"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
# Docker reads the first component as a registry only when it looks like a host: it has a dot
# or a port, or is localhost. Anything else is part of the repository path.
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})+(?::[0-9]+)?|{_LABEL}:[0-9]+|localhost)"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
# The grammar without group names: the OpenAPI document states it as the image field's pattern.
IMAGE_PATTERN = rf"(?:{_HOST}/)?{_PATH}(?::{_TAG})?(?:@{_DIGEST})?"
_REFERENCE = re.compile(rf"(?:(?P<domain>{_HOST})/)?(?P<path>{_PATH})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
# Docker limits the name (registry and repository) to 255 characters, not the tag or digest.
_MAX_NAME = 255


@dataclass(frozen=True)
class ImageRef:
    """The parts of an image reference; ``registry`` is ``docker.io`` for Docker Hub."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None


def parse_image(reference: str) -> ImageRef:
    """Split an image reference into registry, repository, tag and digest.

    Raises ValueError when ``reference`` is not a valid Docker image reference.
    """
    match = _REFERENCE.fullmatch(reference)
    if not match:
        raise ValueError(f"{reference!r} is not a valid image reference such as functions/alpine:latest")
    domain, path = match.group("domain"), match.group("path")
    if len(path) + (len(domain) + 1 if domain else 0) > _MAX_NAME:
        raise ValueError(f"{reference!r} is not a valid image reference: its name is longer than {_MAX_NAME} characters")
    registry = DOCKER_HUB if domain is None or domain in _HUB_ALIASES else domain
    return ImageRef(registry, path, match.group("tag"), match.group("digest"))


def registry_auth_header(registry_auth: str, image: str) -> str:
    """Return the ``X-Registry-Auth`` value for ``image`` from base64 ``user:password``.

    Raises ValueError when ``registry_auth`` is not base64 of ``user:password``.
    """
    try:
        decoded = base64.b64decode(registry_auth, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        # ValueError also covers non-ASCII text, which b64decode refuses with its own message.
        raise ValueError("must be base64 of user:password") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise ValueError("must be base64 of user:password")
    registry = parse_image(image).registry
    address = DOCKER_HUB_AUTH_ADDRESS if registry == DOCKER_HUB else registry
    config = {"username": username, "password": password, "serveraddress": address}
    return base64.urlsafe_b64encode(json.dumps(config).encode()).decode()
