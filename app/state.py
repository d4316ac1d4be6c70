"""Accessors for the per-application objects the blueprints need."""

from __future__ import annotations

from flask import current_app

from app.config import Config
from app.errors import InvalidRequest
from app.provider import LogSource, Provider
from app.names import function_in
from app.upstreams import Upstreams


def provider() -> Provider:
    """The orchestrator behind this application."""
    return current_app.extensions["openfaas.provider"]


def upstreams() -> Upstreams:
    """Where function calls go: task addresses, scale from zero."""
    return current_app.extensions["openfaas.upstreams"]


def log_source() -> LogSource:
    """Where function logs come from."""
    return current_app.extensions["openfaas.logs"]


def settings() -> Config:
    """The configuration this application was created with."""
    return current_app.extensions["openfaas.config"]


def resolve_namespace(namespace: str | None) -> str:
    """The namespace a request means: the default when none is given.

    Raises InvalidRequest (400) for any namespace this gateway does not serve.
    """
    default = settings().namespace
    if namespace in (None, "", default):
        return default
    raise InvalidRequest(f"Namespace {namespace} is not known; this gateway serves namespace {default}.")


def own_function(reference: str) -> str | None:
    """The function in a ``name[.namespace]`` reference, or None when no function of this
    gateway can be meant: an invalid name, or a namespace this gateway does not serve."""
    return function_in(reference, settings().namespace)
