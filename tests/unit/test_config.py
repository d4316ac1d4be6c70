"""Quantities, image references, durations and scaling rules, with property tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import Config, ConfigError, parse_bool, parse_duration
from app.domain.images import parse_image
from app.domain.models import ScalingPolicy
from app.domain.quantities import parse_cpu, parse_memory


@pytest.mark.parametrize(
    "text, size",
    [
        ("128M", 128 * 2**20),
        ("128Mi", 128 * 2**20),
        ("1G", 2**30),
        ("512k", 512 * 1024),
        ("1048576", 2**20),
        ("1.5Gi", 3 * 2**29),
        ("64mb", 64 * 2**20),
    ],
)
def test_memory(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["", "M", "-1M", "0", "12X", "1 G B", "1e6", "0.1"])
def test_memory_refused(text):
    with pytest.raises(ValueError):
        parse_memory(text)


@pytest.mark.parametrize("text, nano", [("0.5", 500_000_000), ("1", 10**9), ("500m", 500_000_000), ("2.25", 2_250_000_000)])
def test_cpu(text, nano):
    assert parse_cpu(text) == nano


@pytest.mark.parametrize("text", ["", "0", "0m", "-1", "1c", "m", "1.5.5"])
def test_cpu_refused(text):
    with pytest.raises(ValueError):
        parse_cpu(text)


@given(st.integers(min_value=1, max_value=2**30), st.sampled_from(["", "k", "K", "Ki", "M", "Mi", "m", "G", "Gi"]))
def test_memory_property(number, suffix):
    shift = {"": 0, "k": 10, "m": 20, "g": 30}[suffix[:1].lower()]
    assert parse_memory(f"{number}{suffix}") == number << shift


@given(st.integers(min_value=1, max_value=64_000))
def test_millicores_equal_cores(milli):
    assert parse_cpu(f"{milli}m") == milli * 1_000_000


@given(st.text(max_size=12))
def test_quantity_parsers_only_raise_value_error(text):
    for parse in (parse_memory, parse_cpu, parse_image):
        try:
            parse(text)
        except ValueError:
            pass


@pytest.mark.parametrize(
    "reference, registry, repository, tag",
    [
        ("alpine", "docker.io", "alpine", None),
        ("functions/alpine:latest", "docker.io", "functions/alpine", "latest"),
        ("index.docker.io/functions/alpine", "docker.io", "functions/alpine", None),
        ("registry:5000/a/b:c", "registry:5000", "a/b", "c"),
        ("localhost/fn", "localhost", "fn", None),
        ("my.registry/x", "my.registry", "x", None),
    ],
)
def test_image_references(reference, registry, repository, tag):
    ref = parse_image(reference)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)


@pytest.mark.parametrize("reference", ["", "UPPER", "a b", "a:", "a@sha256:12", "/a", "a//b", "x" * 300])
def test_image_references_refused(reference):
    with pytest.raises(ValueError):
        parse_image(reference)


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


def test_scaling_policy_defaults_and_rules():
    policy = ScalingPolicy.from_labels({})
    assert (policy.minimum, policy.maximum, policy.factor, policy.zero, policy.max_is_set) == (1, 20, 20, False, False)
    assert policy.initial_replicas() == 1
    assert policy.replicas_after_update(5) == 5
    assert policy.replicas_after_update(0) == 1
    assert policy.manual_scale(0) == 0 and policy.manual_scale(50) == 50
    capped = ScalingPolicy.from_labels({"com.openfaas.scale.max": "4", "com.openfaas.scale.min": "2"})
    assert capped.manual_scale(9) == 4 and capped.replicas_after_update(9) == 4 and capped.initial_replicas() == 2
    assert ScalingPolicy.from_labels({"com.openfaas.scale.min": "0"}).initial_replicas() == 1


@given(st.integers(1, 1000).flatmap(lambda maximum: st.tuples(st.integers(0, maximum), st.just(maximum))), st.integers(0, 1000))
def test_update_keeps_replicas_within_policy(bounds, current):
    minimum, maximum = bounds
    policy = ScalingPolicy.from_labels({"com.openfaas.scale.min": str(minimum), "com.openfaas.scale.max": str(maximum)})
    replicas = policy.replicas_after_update(current)
    assert minimum <= replicas <= maximum
    if minimum <= current <= maximum:
        assert replicas == current


def test_a_namespace_setting_that_is_no_dns_label_stops_the_start(tmp_path):
    from app import create_app

    with pytest.raises(ConfigError, match="environment variable namespace: 'Team_A' is not a valid namespace"):
        create_app(Config(namespace="Team_A", basic_auth=False, state_dir=str(tmp_path)))


def test_config_imports_nothing_from_the_app_package():
    # gunicorn.conf.py loads app/config.py alone, before PROMETHEUS_MULTIPROC_DIR is set; an
    # import of the package from there would fix prometheus_client's storage too early.
    source = (Path(__file__).resolve().parents[2] / "app" / "config.py").read_text()
    assert not re.search(r"^\s*(from app\b|import app\b)", source, re.MULTILINE)
