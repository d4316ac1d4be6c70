"""Config (app.config): settings from the environment under OpenFaaS's names, durations and
booleans, the state folder, and errors that name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.config import Config, ConfigError, parse_bool, parse_duration


@pytest.mark.parametrize("text, seconds", [("60", 60), ("65s", 65), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("2.5", 2.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "-1s", "1x", "1m30", "abc"])
def test_durations_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_booleans():
    assert parse_bool("TRUE") and parse_bool("1") and not parse_bool("off")
    with pytest.raises(ValueError):
        parse_bool("maybe")


def test_worker_timeout_outlasts_every_deadline():
    config = Config.from_env({"write_timeout": "5m", "read_timeout": "10s"})
    assert config.worker_timeout > config.write_timeout > config.read_timeout


def test_config_from_env_uses_openfaas_names():
    config = Config.from_env({"port": "9090", "basic_auth": "false", "write_timeout": "1m30s", "functions_network": "net"})
    assert (config.port, config.basic_auth, config.write_timeout, config.functions_network) == (9090, False, 90, "net")
    assert Config.from_env({}) == Config()


@pytest.mark.parametrize("name, value", [
    ("port", "0"), ("port", "70000"), ("basic_auth", "perhaps"), ("read_timeout", "soon"), ("state_dir", "relative/state"),
    ("cron_catch_up", "0"),
])
def test_config_errors_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})


def test_state_folder_is_one_per_port_under_the_users_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    config = Config.from_env({"port": "9090"})
    assert config.state_dir == str(tmp_path / "faas-swarm-py" / "9090")
    assert config.async_queue == f"sqlite:///{tmp_path}/faas-swarm-py/9090/queue.db"
    assert config.metrics_dir == str(tmp_path / "faas-swarm-py" / "9090" / "metrics")
    assert Config().state_dir == str(tmp_path / "faas-swarm-py" / "8080")
    # Without XDG_STATE_HOME, the spec's default: ~/.local/state.
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Config().state_dir == str(tmp_path / ".local" / "state" / "faas-swarm-py" / "8080")


def test_state_folder_setting_moves_the_queue_and_metrics_unless_the_queue_is_set():
    config = Config.from_env({"state_dir": "/var/lib/gateway"})
    assert (config.async_queue, config.metrics_dir) == ("sqlite:////var/lib/gateway/queue.db", "/var/lib/gateway/metrics")
    config = Config.from_env({"state_dir": "/var/lib/gateway", "async_queue": "redis://redis:6379/0"})
    assert (config.async_queue, config.metrics_dir) == ("redis://redis:6379/0", "/var/lib/gateway/metrics")


def test_the_metrics_folder_can_leave_a_shared_state_folder():
    # As in the image: gateways on one node share the state volume, never their metrics files.
    config = Config.from_env({"state_dir": "/var/lib/gateway", "metrics_dir": "/tmp/gateway-metrics"})
    assert (config.state_dir, config.metrics_dir) == ("/var/lib/gateway", "/tmp/gateway-metrics")
    with pytest.raises(ConfigError, match="metrics_dir"):
        Config.from_env({"metrics_dir": "relative"})


def test_config_imports_nothing_from_the_app_package():
    # gunicorn.conf.py loads app/config.py alone, before PROMETHEUS_MULTIPROC_DIR is set; an
    # import of the package from there would fix prometheus_client's storage too early.
    source = (Path(__file__).resolve().parents[2] / "app" / "config.py").read_text()
    assert not re.search(r"^\s*(from app\b|import app\b)", source, re.MULTILINE)
