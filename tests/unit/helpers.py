"""What several unit-test modules share that is neither a fixture nor state: the credentials the
``config`` fixture sets, request bodies, the contract's scaling vectors, a few scaling policies, and
the generated inputs of property tests. Fixtures are in conftest.py; no test module imports
another, or conftest.py.
"""

from __future__ import annotations

import base64
import string
import uuid

from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from app.domain.models import (
    ANNOTATION_PREFIX,
    GATEWAY_LABEL_PREFIX,
    LABEL_FAAS_FUNCTION,
    LABEL_FUNCTION,
    LABEL_SCALE_FACTOR,
    LABEL_SCALE_MAX,
    LABEL_SCALE_MIN,
    LABEL_SCALE_ZERO,
    FunctionDeployment,
    ScalingPolicy,
)
from app.web.schemas import FunctionDeploymentSchema

USER, PASSWORD = "admin", "s3cret-pass"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


AUTH = basic(USER, PASSWORD)


def deployment(name: str = "echo", **extra) -> dict:
    return {"service": name, "image": "docker.io/functions/alpine:latest", "envProcess": "cat", **extra}


def webhook(*alerts: tuple[str, str], status: str = "firing") -> dict:
    """An Alertmanager body with one alert per (status, function_name), plus fields we ignore."""
    return {
        "receiver": "scale-up",
        "status": status,
        "alerts": [
            {
                "status": alert_status,
                "labels": {"alertname": "APIHighInvocationRate", "function_name": function, "code": "200"},
                "annotations": {"summary": "High invocation total"},
                "startsAt": "2017-03-15T15:52:57.805Z",
            }
            for alert_status, function in alerts
        ],
        "groupKey": 18195285354214864953,
        "version": "3",
    }


# The metrics registry lives as long as the session: a test's function names are its own
# (test_metrics.py, test_prometheus.py).
def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def samples(text: str) -> dict[tuple, float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# The contract's vectors: status, current, max, min, factor -> new.
VECTORS = [
    ("firing", 1, 20, 1, 20, 5),
    ("firing", 4, 20, 1, 20, 8),
    ("firing", 19, 20, 1, 20, 20),
    ("firing", 1, 20, 1, 100, 20),
    ("firing", 1, 20, 1, 0, 1),
    ("firing", 1, 20, 0, 0, 0),
    ("firing", 1, 5, 1, 30, 3),
    ("firing", 1, 4, 1, 1, 2),
    ("resolved", 8, 20, 1, 20, 1),
    ("firing", 1, 28, 1, 25, 9),
]


# Scaling policies the autoscaler's rule (test_scaling.py) and the label tests (test_models.py) use.
MIN1_MAX2 = ScalingPolicy.from_labels({"com.openfaas.scale.max": "2"})
DEFAULT = ScalingPolicy()
ZERO = ScalingPolicy.from_labels({"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "60s"})
FIXED = ScalingPolicy.from_labels({"com.openfaas.scale.min": "3", "com.openfaas.scale.max": "3"})

# The default namespace, and a function for it with that many replicas (test_readings.py,
# test_docker_events.py, test_usage.py).
NS = "openfaas-fn"


def fn(name: str = "echo", replicas: int = 1) -> FunctionDeployment:
    return FunctionDeployment(service=name, image="img:1", labels={LABEL_SCALE_MIN: str(replicas)})


# The settings the routing table and nginx's configuration are rendered with (test_route_table.py,
# test_nginx_routes.py).
TABLE = dict(port=8080, namespace="openfaas-fn")
CONFIG = dict(fallback="gateway:8080", upstream_timeout=60, call_log_port=5514, call_log_token="t0k3n")

# The schema that property tests load generated bodies with (test_specs.py, test_schemas.py).
DEPLOYMENT = FunctionDeploymentSchema()

# Generated inputs that the property tests of several modules draw: names (test_names.py,
# test_specs.py, test_schemas.py), image references (test_images.py, test_specs.py) and labels
# (test_specs.py, test_schemas.py).

function_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
secret_names = st.from_regex(r"[a-zA-Z0-9]([-_.a-zA-Z0-9]{0,48}[a-zA-Z0-9])?", fullmatch=True)

HUB = "docker.io"
HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
_runs = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=6)


@st.composite
def _components(draw) -> str:
    """A path component: lower-case runs joined by '.', '_', '__' or dashes."""
    parts = [draw(_runs)]
    for _ in range(draw(st.integers(0, 2))):
        parts += [draw(st.sampled_from([".", "_", "__", "-", "--"])), draw(_runs)]
    return "".join(parts)


paths = st.lists(_components(), min_size=1, max_size=4).map("/".join)
_host_labels = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", fullmatch=True)
_ports = st.integers(0, 65535).map(lambda port: f":{port}")
_optional_ports = st.one_of(st.just(""), _ports)
# Hosts Docker reads as a registry: dotted, with a port, or localhost.
registries = st.one_of(
    st.builds(lambda labels, port: ".".join(labels) + port, st.lists(_host_labels, min_size=2, max_size=3), _optional_ports),
    st.builds(str.__add__, _host_labels, _ports),
    _optional_ports.map("localhost".__add__),
    st.sampled_from(HUB_ALIASES),
)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}", fullmatch=True)
digests = st.from_regex(r"[0-9a-f]{64}", fullmatch=True).map("sha256:".__add__)


def _docker_split(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain, without the ``library/`` prefix: (registry, repository)."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return (HUB if first in HUB_ALIASES else first), rest
    return HUB, name


@st.composite
def references(draw) -> tuple[str, str, str, str | None, str | None]:
    """(reference, registry, repository, tag, digest) from generated parts."""
    registry = draw(st.one_of(st.none(), registries))
    path = draw(paths)
    first = path.split("/")[0]
    # A first component with '.' and '_' is no host name: Docker's own reading of "a.b_c/d" is ill-defined.
    if registry is None and "/" in path and "." in first and "_" in first:
        registry = "registry.example.com"
    name = f"{registry}/{path}" if registry else path
    tag = draw(st.one_of(st.none(), tags))
    digest = draw(st.one_of(st.none(), digests))
    reference = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return (reference, *_docker_split(name), tag, digest)


_SPECIAL_LABELS = {LABEL_FUNCTION, LABEL_FAAS_FUNCTION, LABEL_SCALE_MIN, LABEL_SCALE_MAX, LABEL_SCALE_FACTOR, LABEL_SCALE_ZERO}


def _free_label(key: str) -> bool:
    return key not in _SPECIAL_LABELS and not key.startswith((ANNOTATION_PREFIX, GATEWAY_LABEL_PREFIX))


_near_reserved = ["com.openfaas.annotations", "com.openfaas.gateway", "com.openfaas.scale", "com.openfaas", "faas_function2"]
# com.openfaas.function is left out: the schema accepts it (when equal to the name) but the status
# never reports it; the contract only promises faas_function.
labels = st.dictionaries(st.one_of(st.sampled_from(_near_reserved), st.text(min_size=1, max_size=20)).filter(_free_label),
                         st.text(max_size=20), max_size=5)
