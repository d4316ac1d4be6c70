"""GET /system/events (app.web.blueprints.events): server-sent events until the deadline, bad
queries refused, and one cap shared with the log streams."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import response_schema_conformance

import app as app_package
from app import create_app
from app.config import Config
from app.domain.models import FUNCTION_DELETED
from tests.unit.helpers import NS, deployment


def _sse(response) -> list[dict]:
    lines = response.get_data(as_text=True).splitlines()
    return [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]


def test_events_route_streams_sse_until_the_deadline(app, client, engine):
    client.post("/system/functions", json=deployment())
    # Two followers of Docker's events: the stream's, and the service cache's it starts.
    deploy_later = threading.Thread(target=lambda: (engine.wait_for_watchers(2), client.delete(
        "/system/functions", json={"functionName": "echo"})))
    deploy_later.start()
    response = client.get("/system/events?function=echo")
    deploy_later.join(timeout=5)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no"
    body = response.get_data(as_text=True)
    assert body.startswith(": stream open\n\n")
    assert "event: function.deleted\ndata: " in body
    (deleted,) = [event for event in _sse(response) if event["type"] == FUNCTION_DELETED]
    assert deleted == {"type": FUNCTION_DELETED, "time": deleted["time"], "name": "echo", "namespace": NS}
    # As the service's document says (the fuzzed cases only ever meet a quiet stream).
    document = schemathesis.openapi.from_path(str(Path(app_package.__file__).with_name("openapi.yaml")))
    case = document["/system/events"]["GET"].Case(query={"function": "echo"})
    case.validate_response(response, checks=[response_schema_conformance])


@pytest.mark.parametrize("query, field", [("function=Not_A_Name", "function"), ("namespace=elsewhere", "elsewhere")])
def test_events_route_refuses_bad_queries(client, query, field):
    response = client.get(f"/system/events?{query}")
    assert response.status_code == 400 and field in response.get_data(as_text=True)


def test_event_and_log_streams_share_one_cap(runtime, logs):
    app = create_app(Config(basic_auth=False, max_log_streams=1), dataclasses.replace(runtime, logs=logs))
    client = app.test_client()
    client.post("/system/functions", json=deployment())
    first = client.get("/system/events", buffered=False)
    assert first.status_code == 200
    refused = client.get("/system/logs?name=echo")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    first.close()
    assert client.get("/system/logs?name=echo").status_code == 200
