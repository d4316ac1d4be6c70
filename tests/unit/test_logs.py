"""GET /system/logs (app.web.blueprints.logs): NDJSON with the five fields, its query, and follow
streams that end at the deadline or when their client has gone, capped per worker."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time

import pytest

from app import create_app
from app.config import Config
from app.domain.models import LogMessage
from app.web.streaming import POLL_INTERVAL
from tests.unit.helpers import deployment


def _lines(response) -> list[dict]:
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def _message(text: str) -> LogMessage:
    return LogMessage("echo", "openfaas-fn", "task1", "2026-01-01T00:00:00.000000001Z", text)


def test_logs_are_ndjson_with_the_five_fields(client, logs):
    client.post("/system/functions", json=deployment())
    logs.messages["echo"] = [_message("one"), _message('two "quoted" ✓')]
    response = client.get("/system/logs?name=echo&tail=5&follow=false&since=2026-01-01T00:00:00Z")
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    lines = _lines(response)
    assert [line["text"] for line in lines] == ["one", 'two "quoted" ✓']
    assert set(lines[0]) == {"name", "namespace", "instance", "timestamp", "text"}
    request, stream = logs.opened[-1]
    assert (request.tail, request.follow, request.since) == (5, False, "2026-01-01T00:00:00.000000000Z")
    assert stream.closed.is_set()


@pytest.mark.parametrize("tail, expected", [("0", None), ("-3", None), ("7", 7)])
def test_tail_of_zero_or_less_means_everything(client, logs, tail, expected):
    client.post("/system/functions", json=deployment())
    client.get(f"/system/logs?name=echo&tail={tail}").get_data()
    assert logs.opened[-1][0].tail == expected


@pytest.mark.parametrize("spelling, value", [("true", True), ("1", True), ("yes", True), ("False", False), ("0", False)])
def test_follow_spellings(client, logs, spelling, value):
    client.post("/system/functions", json=deployment())
    client.get(f"/system/logs?name=echo&follow={spelling}").get_data()
    assert logs.opened[-1][0].follow is value


@pytest.mark.parametrize(
    "query, field",
    [
        ("", "name"),
        ("name=Bad_Name", "name"),
        ("name=echo&tail=many", "tail"),
        ("name=echo&tail=1.5", "tail"),
        ("name=echo&follow=perhaps", "follow"),
        ("name=echo&since=yesterday", "since"),
        ("name=echo&since=2026-01-01T00:00:00", "since"),
        ("name=echo&instance=a/b", "instance"),
        ("name=echo&namespace=elsewhere", "elsewhere"),
    ],
)
def test_bad_queries_are_400_naming_the_parameter(client, query, field):
    client.post("/system/functions", json=deployment())
    response = client.get(f"/system/logs?{query}")
    assert response.status_code == 400
    assert field in response.get_data(as_text=True)


def test_unknown_function_is_404(client):
    response = client.get("/system/logs?name=ghost")
    assert response.status_code == 404 and "ghost" in response.get_data(as_text=True)


def test_a_quiet_follow_stream_ends_cleanly_at_the_deadline(client, logs, config):
    client.post("/system/functions", json=deployment())
    logs.messages["echo"] = [_message("only line")]
    logs.hold = True
    started = time.monotonic()
    response = client.get("/system/logs?name=echo&follow=true")
    assert [line["text"] for line in _lines(response)] == ["only line"]
    assert time.monotonic() - started < config.write_timeout + 5
    assert logs.opened[-1][1].closed.is_set()


def test_a_follow_stream_ends_soon_after_its_client_has_gone(runtime, logs):
    app = create_app(Config(basic_auth=False, write_timeout=60), dataclasses.replace(runtime, logs=logs))
    client = app.test_client()
    client.post("/system/functions", json=deployment())
    logs.messages["echo"] = [_message("only line")]
    logs.hold = True
    ours, theirs = socket.socketpair()
    theirs.close()  # the client has gone before its first line
    read: list[bytes] = []
    reader = threading.Thread(
        target=lambda: read.append(client.get("/system/logs?name=echo&follow=true", environ_base={"gunicorn.socket": ours}).data)
    )
    try:
        reader.start()
        # Far sooner than the 60 s deadline: the watcher looks every POLL_INTERVAL.
        reader.join(timeout=POLL_INTERVAL + 5)
        assert not reader.is_alive(), "the stream outlived its client"
        assert logs.opened[-1][1].closed.is_set()
    finally:
        for _, stream in logs.opened:
            stream.close()
        reader.join(timeout=5)
        ours.close()


def test_log_streams_per_worker_are_capped_with_a_503(runtime, logs):
    app = create_app(Config(basic_auth=False, max_log_streams=1), dataclasses.replace(runtime, logs=logs))
    client = app.test_client()
    client.post("/system/functions", json=deployment())
    logs.hold = True
    first = client.get("/system/logs?name=echo&follow=true", buffered=False)
    assert first.status_code == 200
    refused = client.get("/system/logs?name=echo&follow=true")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert "log streams" in refused.get_data(as_text=True)
    first.close()  # the server closes the response: the slot is free again
    logs.hold = False
    assert client.get("/system/logs?name=echo", buffered=True).status_code == 200
    assert client.get("/system/logs?name=ghost", buffered=True).status_code == 404  # its slot is given back
    assert client.get("/system/logs?name=echo", buffered=True).status_code == 200
