"""GET /metrics (app.web.blueprints.prometheus): the exposition, without credentials."""

from __future__ import annotations

from app import metrics
from tests.unit.helpers import samples, unique


def test_metrics_route_needs_no_credentials(app):
    echo = unique("echo")
    metrics.record_invocation(echo, 200, 0.1)
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert samples(response.text)[("gateway_function_invocation_total", ("code", "200"), ("function_name", echo))] == 1
