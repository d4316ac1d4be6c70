"""Alert-driven scaling: the contract's vectors through POST /system/alert, bad bodies, partial
failures, and property tests of the pure rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.models import LABEL_SCALE_FACTOR, LABEL_SCALE_MAX, LABEL_SCALE_MIN, ScalingPolicy
from app.domain.scaling import alert_target
from tests.unit.conftest import deployment

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


def deploy(client, name: str, current: int, maximum: int = 20, minimum: int = 1, factor: int = 20) -> None:
    labels = {LABEL_SCALE_MAX: str(maximum), LABEL_SCALE_MIN: str(minimum), LABEL_SCALE_FACTOR: str(factor)}
    assert client.post("/system/functions", json=deployment(name, labels=labels)).status_code == 202
    scale = client.post(f"/system/scale-function/{name}", json={"serviceName": name, "replicas": current})
    assert scale.status_code == 202


def replicas(runtime, name: str) -> int:
    return runtime.functions.get_function(name).replicas


@pytest.mark.parametrize("status, current, maximum, minimum, factor, new", VECTORS)
def test_contract_vectors_through_the_webhook(client, runtime, status, current, maximum, minimum, factor, new):
    deploy(client, "echo", current, maximum, minimum, factor)
    assert replicas(runtime, "echo") == current
    response = client.post("/system/alert", json=webhook((status, "echo")))
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/plain"
    assert replicas(runtime, "echo") == new


@pytest.mark.parametrize("status, current, maximum, minimum, factor, new", VECTORS)
def test_contract_vectors_of_the_rule(status, current, maximum, minimum, factor, new):
    assert alert_target(status, current, ScalingPolicy(minimum, maximum, factor)) == new


def test_nothing_is_done_when_the_count_would_not_change(client, runtime, monkeypatch):
    deploy(client, "echo", 20)
    calls = []
    monkeypatch.setattr(runtime.functions, "scale", lambda name, count: calls.append((name, count)))
    response = client.post("/system/alert", json=webhook(("firing", "echo")))
    assert response.status_code == 200
    assert "1 unchanged" in response.text
    assert calls == []


def test_unknown_functions_are_skipped(client, runtime):
    deploy(client, "echo", 1)
    response = client.post("/system/alert", json=webhook(("firing", "gone"), ("firing", "func_nodeinfo"), ("firing", "echo")))
    assert response.status_code == 200, response.text
    assert "1 scaled" in response.text and "2 skipped" in response.text
    assert replicas(runtime, "echo") == 5


def test_function_name_may_carry_the_gateways_namespace(client, runtime):
    deploy(client, "echo", 1)
    assert client.post("/system/alert", json=webhook(("firing", "echo.openfaas-fn"))).status_code == 200
    assert replicas(runtime, "echo") == 5


def test_a_function_in_another_namespace_is_skipped(client, runtime):
    deploy(client, "echo", 1)
    response = client.post("/system/alert", json=webhook(("firing", "echo.elsewhere")))
    assert response.status_code == 200, response.text
    assert "1 skipped" in response.text
    assert replicas(runtime, "echo") == 1


def test_each_alert_follows_its_own_status(client, runtime):
    deploy(client, "up", 1)
    deploy(client, "down", 8)
    response = client.post("/system/alert", json=webhook(("firing", "up"), ("resolved", "down"), status="firing"))
    assert response.status_code == 200
    assert (replicas(runtime, "up"), replicas(runtime, "down")) == (5, 1)


def test_an_empty_alert_list_does_nothing(client):
    response = client.post("/system/alert", json=webhook())
    assert response.status_code == 200
    assert response.text.startswith("Alerts handled: 0 ")


def test_failures_are_listed_and_do_not_stop_other_alerts(client, runtime, engine):
    deploy(client, "echo", 1)
    deploy(client, "broken", 1)
    # Labels a client could not deploy, as if changed behind the gateway's back.
    engine.service("broken")["Spec"]["Labels"][LABEL_SCALE_MAX] = "lots"
    response = client.post("/system/alert", json=webhook(("firing", "broken"), ("firing", "echo")))
    assert response.status_code == 500
    assert response.mimetype == "text/plain"
    lines = response.text.splitlines()
    assert lines[0] == "Could not handle 1 of 2 alerts:"
    assert lines[1].startswith(f"broken: label {LABEL_SCALE_MAX} must be a whole number")
    assert len(lines) == 2
    assert replicas(runtime, "echo") == 5


def test_an_orchestrator_failure_is_a_500_naming_the_function(client, engine):
    deploy(client, "echo", 1)
    engine.down = True
    response = client.post("/system/alert", json=webhook(("firing", "echo")))
    assert response.status_code == 500
    assert response.text.splitlines()[1] == "echo: Docker is unreachable; could not list services."


def _without(body: dict, *path) -> dict:
    *parents, last = path
    target = body
    for key in parents:
        target = target[key]
    del target[last]
    return body


def _with(body: dict, value, *path) -> dict:
    *parents, last = path
    target = body
    for key in parents:
        target = target[key]
    target[last] = value
    return body


@pytest.mark.parametrize(
    "body, field",
    [
        (_without(webhook(), "alerts"), "alerts"),
        (_without(webhook(), "receiver"), "receiver"),
        (_without(webhook(), "status"), "status"),
        (_with(webhook(), {"status": "firing"}, "alerts"), "alerts"),
        (_with(webhook(), ["firing"], "alerts"), "alerts.0"),
        (_without(webhook(("firing", "echo")), "alerts", 0, "labels"), "alerts.0.labels"),
        (_without(webhook(("firing", "echo")), "alerts", 0, "status"), "alerts.0.status"),
        (_with(webhook(("firing", "echo")), "sleeping", "alerts", 0, "status"), "alerts.0.status"),
        (_without(webhook(("firing", "echo")), "alerts", 0, "labels", "function_name"), "alerts.0.labels.function_name"),
        (_with(webhook(("firing", "echo")), "", "alerts", 0, "labels", "function_name"), "alerts.0.labels.function_name"),
        (_with(webhook(("firing", "echo")), 7, "alerts", 0, "labels", "function_name"), "alerts.0.labels.function_name"),
        (_without(webhook(("firing", "echo")), "alerts", 0, "labels", "alertname"), "alerts.0.labels.alertname"),
    ],
)
def test_bad_bodies_are_a_400_naming_the_field(client, runtime, body, field):
    deploy(client, "echo", 1)
    response = client.post("/system/alert", json=body)
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert f"{field}:" in response.text
    assert replicas(runtime, "echo") == 1


@pytest.mark.parametrize("data", [b"", b"not json", b"[]"])
def test_a_body_that_is_not_an_object_is_a_400(client, data):
    response = client.post("/system/alert", data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.text == "The request body must be a JSON object.\n"


def test_alerts_need_credentials(app):
    assert app.test_client().post("/system/alert", json=webhook()).status_code == 401


_policies = st.builds(
    lambda low, high, factor: ScalingPolicy(min(low, high), max(low, high), factor),
    st.integers(0, 1000),
    st.integers(1, 1000),
    st.integers(0, 100),
)


@given(st.sampled_from(["firing", "resolved"]), st.integers(0, 1000), _policies)
def test_the_target_never_exceeds_the_maximum(status, current, policy):
    assert alert_target(status, current, policy) <= policy.maximum


@given(st.sampled_from(["firing", "resolved"]), st.data(), _policies)
def test_from_within_the_range_the_target_stays_within_it(status, data, policy):
    current = data.draw(st.integers(policy.minimum, policy.maximum))
    assert policy.minimum <= alert_target(status, current, policy) <= policy.maximum


@given(st.data(), _policies)
def test_firing_never_scales_down_within_the_range(data, policy):
    current = data.draw(st.integers(policy.minimum, policy.maximum))
    target = alert_target("firing", current, policy)
    if policy.factor > 0:
        assert target > current or target == policy.maximum
    else:
        assert target == policy.minimum


@given(st.integers(0, 1000), _policies)
def test_resolved_always_means_the_minimum(current, policy):
    assert alert_target("resolved", current, policy) == policy.minimum
