"""Log decoding, query parsing and the NDJSON streaming endpoint, without Docker."""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import create_app
from app.config import Config
from app.domain.models import LogMessage
from app.domain.timestamps import normalise, parse_rfc3339
from app.runtime.swarm.logdecode import DockerLogDecoder
from app.web.streaming import POLL_INTERVAL, client_gone
from tests.unit.conftest import deployment

DETAILS = "com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id={task}"


def frame(payload: bytes, stream: int = 1) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(payload)) + payload


def entry(ts: str, text: str, task: str = "t1", end: str = "\n") -> bytes:
    return f"{ts} {DETAILS.format(task=task)} {text}{end}".encode()


def decode_in_pieces(data: bytes, cuts: list[int], **kwargs) -> list[LogMessage]:
    decoder = DockerLogDecoder("fn", "ns", **kwargs)
    out, start = [], 0
    for cut in sorted(set(cuts)) + [len(data)]:
        out += decoder.feed(data[start:cut])
        start = cut
    return out + decoder.finish()


STREAM = (
    frame(entry("2026-01-01T00:00:01.5Z", "first"))
    + frame(entry("2026-01-01T00:00:02.000000001Z", "a" * 100, end=""))
    + frame(entry("2026-01-01T00:00:02.000000002Z", "b" * 100, end=""))
    + frame(entry("2026-01-01T00:00:03Z", "err", task="t2"), stream=2)
    + frame(entry("2026-01-01T00:00:02.000000003Z", "tail-of-long"))
    + frame(entry("2026-01-01T00:00:04Z", "ünïcode – ok", task="t%C3%A9"))  # details are URL-encoded
    + frame(b"no timestamp here\n")
)
EXPECTED = [
    ("t1", "2026-01-01T00:00:01.500000000Z", "first"),
    ("t2", "2026-01-01T00:00:03.000000000Z", "err"),
    ("t1", "2026-01-01T00:00:02.000000001Z", "a" * 100 + "b" * 100 + "tail-of-long"),
    ("té", "2026-01-01T00:00:04.000000000Z", "ünïcode – ok"),
    ("", None, "no timestamp here"),
]


def _summary(messages):
    return [(m.instance, m.timestamp if m.instance or m.text != "no timestamp here" else None, m.text) for m in messages]


def test_decoder_joins_split_lines_and_keeps_unparsable_ones():
    assert _summary(decode_in_pieces(STREAM, [])) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_decoder_does_not_care_where_the_network_cuts(cuts):
    assert _summary(decode_in_pieces(STREAM, cuts)) == EXPECTED


def test_every_message_has_the_five_fields_and_a_nanosecond_timestamp():
    for message in decode_in_pieces(STREAM, []):
        assert (message.name, message.namespace) == ("fn", "ns")
        assert len(message.timestamp) == 30 and message.timestamp.endswith("Z")


def test_a_line_without_end_is_cut_at_the_limit_and_never_lost():
    pieces = b"".join(frame(entry("2026-01-01T00:00:01Z", "x" * 60, end="")) for _ in range(5))
    messages = decode_in_pieces(pieces, [], max_message=100)
    assert "".join(m.text for m in messages) == "x" * 300
    assert all(len(m.text) <= 120 for m in messages)


def test_tty_streams_without_frames_are_read_as_lines():
    data = entry("2026-01-01T00:00:01Z", "one") + b"plain\n" + entry("2026-01-01T00:00:02Z", "two", end="")
    assert [m.text for m in decode_in_pieces(data, [5, 50])] == ["one", "plain", "two"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000000000Z"),
        ("2026-01-02T03:04:05.123Z", "2026-01-02T03:04:05.123000000Z"),
        ("2026-01-02T03:04:05.123456789+02:00", "2026-01-02T01:04:05.123456789Z"),
        ("2026-01-02T03:04:05-01:30", "2026-01-02T04:34:05.000000000Z"),
    ],
)
def test_timestamps(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize(
    "text", ["2026-01-02", "2026-01-02T03:04:05", "2026-02-30T00:00:00Z", "yesterday", "2026-01-02T03:04:05.1234567891Z"]
)
def test_bad_timestamps(text):
    with pytest.raises(ValueError):
        parse_rfc3339(text)


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


def test_a_client_is_gone_only_once_its_side_is_closed():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert not client_gone(ours)
        theirs.sendall(b"GET / HTTP/1.1\r\n")  # a pipelined request is readable, but no EOF
        assert not client_gone(ours)
        assert ours.recv(64)
        theirs.close()
        assert client_gone(ours)
    assert client_gone(ours)  # closed here too: nothing more can be told, so it is gone
    assert not client_gone(None)


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
