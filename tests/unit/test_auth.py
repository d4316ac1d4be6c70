"""Basic auth guards every /system route; the test walks the URL map so new routes are covered."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import Config, ConfigError
from tests.fakes import fake_runtime
from tests.unit.conftest import AUTH, PASSWORD, USER, basic


def _system_routes(app):
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<name>", "echo")
        for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
            yield path, method


def test_every_system_and_internal_route_needs_credentials(app):
    client = app.test_client()
    routes = [(path, method) for path, method in _system_routes(app) if path.startswith(("/system", "/_/"))]
    assert len(routes) >= 12 and ("/_/routes", "GET") in routes
    for path, method in routes:
        for headers in ({}, basic(USER, "wrong"), basic("wrong", PASSWORD), {"Authorization": "Bearer x"}):
            response = client.open(path, method=method, headers=headers, json={})
            assert response.status_code == 401, (path, method, headers)
            assert response.headers["WWW-Authenticate"] == 'Basic realm="OpenFaaS"'
        response = client.open(path, method=method, headers=AUTH, json={})
        assert response.status_code != 401, (path, method)


def test_unknown_system_paths_do_not_reveal_themselves(app):
    assert app.test_client().get("/system/nothing-here").status_code == 401


def test_healthz_needs_no_credentials(app):
    assert app.test_client().get("/healthz").status_code == 200
    assert app.test_client().head("/healthz").status_code == 200


def test_credentials_from_files(tmp_path):
    (tmp_path / "basic-auth-user").write_text("filer\n")
    (tmp_path / "basic-auth-password").write_text("from-file\n")
    app = create_app(Config(secret_mount_path=str(tmp_path)), fake_runtime())
    client = app.test_client()
    assert client.get("/system/functions", headers=basic("filer", "from-file")).status_code == 200
    assert client.get("/system/functions", headers=basic("filer", "nope")).status_code == 401


def test_auth_on_without_credentials_refuses_to_start(tmp_path):
    with pytest.raises(ConfigError, match="basic-auth-user"):
        create_app(Config(secret_mount_path=str(tmp_path)), fake_runtime())


def test_auth_can_be_switched_off():
    app = create_app(Config(basic_auth=False), fake_runtime())
    assert app.test_client().get("/system/functions").status_code == 200
