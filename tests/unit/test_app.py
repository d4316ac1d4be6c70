"""create_app (app/__init__.py): a setting it refuses to start with, and the body limit it sets on
/system requests."""

from __future__ import annotations

import pytest

from app.config import Config, ConfigError


def test_a_namespace_setting_that_is_no_dns_label_stops_the_start(tmp_path):
    from app import create_app

    with pytest.raises(ConfigError, match="environment variable namespace: 'Team_A' is not a valid namespace"):
        create_app(Config(namespace="Team_A", basic_auth=False, state_dir=str(tmp_path)))


def test_oversized_system_body_is_413(client):
    response = client.post("/system/functions", data=b"{" + b" " * (2 * 1024 * 1024) + b"}", content_type="application/json")
    assert response.status_code == 413
