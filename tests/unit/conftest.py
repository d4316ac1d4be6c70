"""Fixtures for HTTP-level unit tests: the real Flask app over the in-memory FakeProvider."""

from __future__ import annotations

import base64

import pytest

from app import create_app
from app.config import Config
from tests.fakes import FakeProvider

USER, PASSWORD = "admin", "s3cret-pass"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


AUTH = basic(USER, PASSWORD)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def app(provider):
    return create_app(Config(basic_auth_user=USER, basic_auth_password=PASSWORD), provider)


@pytest.fixture
def client(app):
    """A test client that sends the right credentials unless a test overrides the header."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    return client


def deployment(name: str = "echo", **extra) -> dict:
    return {"service": name, "image": "docker.io/functions/alpine:latest", "envProcess": "cat", **extra}
