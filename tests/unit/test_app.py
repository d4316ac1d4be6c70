"""create_app (app/__init__.py): a setting it refuses to start with, and the limits it sets on requests."""

from __future__ import annotations

import pytest

from app.config import Config, ConfigError


def test_a_namespace_setting_that_is_no_dns_label_stops_the_start(tmp_path):
    from app import create_app

    with pytest.raises(ConfigError, match="environment variable namespace: 'Team_A' is not a valid namespace"):
        create_app(Config(namespace="Team_A", basic_auth=False, state_dir=str(tmp_path)))
