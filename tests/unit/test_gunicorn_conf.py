"""gunicorn.conf.py takes gunicorn's own settings from the gateway's Config."""

from __future__ import annotations

import importlib.util
import pathlib

import gunicorn.config
import pytest

CONF = pathlib.Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def load_conf(monkeypatch, tmp_path, **environ):
    monkeypatch.setenv("state_dir", str(tmp_path / "state"))
    # The file sets this for the gunicorn process; monkeypatch puts the test process's back.
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_come_from_config(monkeypatch, tmp_path):
    conf = load_conf(monkeypatch, tmp_path, workers="3", worker_connections="50", graceful_timeout="1m", port="9091")
    assert (conf.workers, conf.worker_connections, conf.graceful_timeout, conf.bind) == (3, 50, 60, "0.0.0.0:9091")


@pytest.mark.parametrize("grace", ["30", "2.5s", "1m30s"])
def test_gunicorn_accepts_every_setting_as_given(monkeypatch, tmp_path, grace):
    # gunicorn validates each setting when it reads the file; a float where it wants whole
    # seconds stops the server at start.
    conf = load_conf(monkeypatch, tmp_path, graceful_timeout=grace)
    settings = gunicorn.config.Config()
    for name, value in vars(conf).items():
        if name in settings.settings:
            settings.set(name, value)
    assert settings.graceful_timeout >= 1


def test_defaults_are_configs(monkeypatch, tmp_path):
    from app.config import Config

    conf = load_conf(monkeypatch, tmp_path)
    defaults = Config()
    assert (conf.workers, conf.worker_connections, conf.graceful_timeout) == (
        defaults.workers, defaults.worker_connections, defaults.graceful_timeout
    )


def test_an_unusable_value_names_the_variable(monkeypatch, tmp_path):
    # The file loads app/config.py on its own, so its ConfigError is another class object.
    with pytest.raises(ValueError, match="environment variable workers"):
        load_conf(monkeypatch, tmp_path, workers="many")
