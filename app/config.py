"""Configuration read from environment variables.

The names OpenFaaS users already know (``port``, ``basic_auth``, ``read_timeout`` ...) are
accepted in lower case exactly as OpenFaaS spells them; the README documents every variable in
one table. ``Config.from_env`` raises ``ConfigError`` naming the variable for any unusable value,
so a misconfigured gateway refuses to start instead of misbehaving later. This module imports
nothing from the ``app`` package: gunicorn.conf.py loads it on its own, before the package (and
prometheus_client with it) may be imported; the one rule of another module a value must meet,
``namespace`` being a DNS label, is checked by ``create_app``.

Each gateway keeps its files (the SQLite async queue, the metrics of its worker processes) in a
state folder of its own, ``state_dir``: by default ``$XDG_STATE_HOME/faas-swarm-py/<port>`` (that
is ``~/.local/state/...``), so two gateways on one machine never share a queue, and a restarted
gateway finds the calls it had accepted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

DEFAULT_NAMESPACE = "openfaas-fn"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A configuration variable has a value the gateway cannot use.

    The one error class outside ``app.errors``: it stops the start and never reaches a client,
    and gunicorn.conf.py loads this module on its own, before the package (and so before
    ``app.errors``) may be imported.
    """


def parse_duration(text: str) -> float:
    """Return seconds for ``60``, ``65s``, ``1m30s``, ``500ms`` (Go duration syntax).

    Raises ValueError for anything else, including negative or empty values.
    """
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(text):
        raise ValueError(f"{text!r} is not a duration such as 60, 65s or 1m30s")
    return total


def parse_bool(text: str) -> bool:
    """Return the boolean for the usual spellings (true/false, 1/0, yes/no, on/off)."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (true or false)")


@dataclass(frozen=True)
class Config:
    """Settings of one gateway process; see the README's configuration table."""

    port: int = 8080
    basic_auth: bool = True
    secret_mount_path: str = "/run/secrets"
    basic_auth_user: str | None = None
    basic_auth_password: str | None = None
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    upstream_timeout: float = 60.0
    functions_network: str = "func_functions"
    scale_from_zero: bool = True
    scale_from_zero_timeout: float = 30.0
    # Empty means the default: the folder from default_state_dir, and a SQLite file in it.
    state_dir: str = ""
    # Empty means <state_dir>/metrics. Only this gateway's own processes may write there: the
    # image keeps it outside the state volume, which two gateway containers on one node share.
    metrics_dir: str = ""
    async_queue: str = ""
    async_concurrency: int = 8
    async_function_concurrency: int = 4
    async_max_attempts: int = 4
    async_claim_timeout: float = 300.0
    max_async_body_bytes: int = 16 * 1024 * 1024
    # How much of an async call's answer its record keeps, and for how long after it finished.
    async_result_max_bytes: int = 64 * 1024
    async_retention: float = 24 * 3600.0
    namespace: str = DEFAULT_NAMESPACE
    # Containers with this label (key or key=value) on this node are attached to every
    # namespace's network: the gateway and nginx, which call functions in every namespace.
    edge_label: str = ""
    docker_timeout: float = 30.0
    max_body_bytes: int = 1024 * 1024
    max_log_streams: int = 200
    log_level: str = "info"
    git_sha: str = "unknown"
    forwarded_hops: int = 0
    # nginx routes calls itself (app/dataplane/route_table.py): where it sends its call log, and where it falls
    # back to the gateway.
    call_log_port: int = 5514
    route_fallback: str = "gateway:8080"
    # Whether nginx routes calls of other namespaces' functions itself, which needs nginx on their
    # networks; off (a stack, where that means restarting nginx), they go through the gateway.
    route_namespaces: bool = True
    # The built-in autoscaler (app/background/autoscaler.py): on or off, how often it looks, and how long
    # the load must stay lower before it scales down.
    autoscaler: bool = True
    autoscaler_interval: float = 5.0
    autoscaler_stabilization: float = 30.0
    # How far back the cron scheduler (app/queue/cron.py) catches up on runs it missed, after
    # a restart or an outage.
    cron_catch_up: float = 3600.0
    # How often the dashboard's time series (app/background/timeseries.py) samples every function.
    series_interval: float = 10.0
    # gunicorn's own settings (gunicorn.conf.py): processes, connections per gevent worker, and
    # how long a stopping worker lets open streams and calls finish.
    workers: int = 2
    worker_connections: int = 1000
    graceful_timeout: float = 30.0
    # A cluster of several nodes (docs/cluster.md): the global Swarm service of the node agents
    # (app/agent) this gateway asks for what Docker reports per node, their port, and how long one
    # node may take to answer. Empty: one node, whose Docker the gateway reads directly.
    agent_service: str = ""
    agent_port: int = 8081
    agent_timeout: float = 2.0

    def __post_init__(self) -> None:
        # Defaults that depend on other settings; object.__setattr__ because the class is frozen.
        if not self.state_dir:
            object.__setattr__(self, "state_dir", default_state_dir(self.port))
        if not self.metrics_dir:
            object.__setattr__(self, "metrics_dir", os.path.join(self.state_dir, "metrics"))
        if not self.async_queue:
            object.__setattr__(self, "async_queue", "sqlite:///" + os.path.join(self.state_dir, "queue.db"))

    @property
    def agent_token_file(self) -> str:
        """The shared secret gateways and node agents authenticate each other with (a Swarm
        secret named ``agent-token``)."""
        return os.path.join(self.secret_mount_path, "agent-token")

    @property
    def worker_timeout(self) -> int:
        """gunicorn's worker timeout: above every request deadline, so a response still within
        its deadline (a log stream runs up to ``write_timeout``) is never cut as a stuck worker."""
        return int(max(self.read_timeout, self.write_timeout, self.upstream_timeout)) + 30

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Config":
        """Build a Config from ``environ``; unset variables keep their defaults.

        Raises ConfigError naming the first variable whose value is unusable.
        """
        parsers = {
            "port": _port,
            "basic_auth": parse_bool,
            "secret_mount_path": _text,
            "basic_auth_user": _text,
            "basic_auth_password": _text,
            "read_timeout": parse_duration,
            "write_timeout": parse_duration,
            "upstream_timeout": parse_duration,
            "functions_network": _text,
            "scale_from_zero": parse_bool,
            "scale_from_zero_timeout": parse_duration,
            "state_dir": _absolute_path,
            "metrics_dir": _absolute_path,
            "async_queue": _text,
            "async_concurrency": _positive_int,
            "async_function_concurrency": _positive_int,
            "async_max_attempts": _positive_int,
            "async_claim_timeout": parse_duration,
            "max_async_body_bytes": _positive_int,
            "async_result_max_bytes": _count,
            "async_retention": parse_duration,
            "namespace": _text,  # a DNS label: create_app checks it with app.domain.names
            "edge_label": _text,
            "docker_timeout": parse_duration,
            "max_body_bytes": _positive_int,
            "max_log_streams": _positive_int,
            "log_level": _log_level,
            "git_sha": _text,
            "forwarded_hops": _count,
            "call_log_port": _optional_port,
            "route_fallback": _host_port,
            "route_namespaces": parse_bool,
            "autoscaler": parse_bool,
            "autoscaler_interval": _positive_duration,
            "autoscaler_stabilization": parse_duration,
            "cron_catch_up": _positive_duration,
            "series_interval": _positive_duration,
            "workers": _positive_int,
            "worker_connections": _positive_int,
            "graceful_timeout": parse_duration,
            "agent_service": _text,
            "agent_port": _port,
            "agent_timeout": _positive_duration,
        }
        values = {}
        for name, parse in parsers.items():
            if name in environ:
                try:
                    values[name] = parse(environ[name])
                except ValueError as exc:
                    raise ConfigError(f"environment variable {name}: {exc}") from None
        return cls(**values)


def default_state_dir(port: int) -> str:
    """The state folder of the gateway on ``port``: one per user and port, kept across restarts
    (the XDG base directory spec's place for state, ``$XDG_STATE_HOME`` or ``~/.local/state``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser(os.path.join("~", ".local", "state"))
    return os.path.join(base, "faas-swarm-py", str(port))


def _absolute_path(value: str) -> str:
    if not os.path.isabs(value):
        raise ValueError(f"{value!r} is not an absolute path")
    return value


def _positive_duration(value: str) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a duration above zero")
    return seconds


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _positive_int(value: str) -> int:
    if not value.strip().isdigit() or int(value) <= 0:
        raise ValueError(f"{value!r} is not a positive whole number")
    return int(value)


def _count(value: str) -> int:
    if not value.strip().isdigit():
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _port(value: str) -> int:
    port = _positive_int(value)
    if port > 65535:
        raise ValueError(f"{value!r} is not a TCP port (1-65535)")
    return port


def _optional_port(value: str) -> int:
    """A UDP or TCP port, or 0 for "off"."""
    return 0 if value.strip() == "0" else _port(value)


def _host_port(value: str) -> str:
    # It is written into nginx's configuration: nothing but a name or address and a port.
    host, _, port = value.strip().rpartition(":")
    if not re.fullmatch(r"[A-Za-z0-9]([-.A-Za-z0-9]*[A-Za-z0-9])?", host):
        raise ValueError(f"{value!r} is not host:port")
    return f"{host}:{_port(port)}"


def _log_level(value: str) -> str:
    level = value.strip().lower()
    if level not in {"debug", "info", "warning", "error", "critical"}:
        raise ValueError(f"{value!r} is not one of debug, info, warning, error, critical")
    return level
