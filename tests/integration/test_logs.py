"""GET /system/logs through real gunicorn gevent workers, against functions on the real Swarm."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import threading
import time
from urllib.parse import urlencode, urlsplit

import pytest

from app.dataplane.readiness import FUNCTION_PORT
from app.domain.timestamps import format_rfc3339_nano, now_rfc3339_nano, parse_rfc3339
from tests.gateway import AUTH, call
from tests.swarm import shared_name
from tests.waiting import wait_for

STREAM_DEADLINE = 4  # seconds: the gateway's write_timeout in this module
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
LONG_LINE = 40_000  # well past Docker's 16 KiB split


@pytest.fixture(scope="module")
def gateway(start_gateway):
    # No time series: its rounds (every 10 s) read replicas' stats over Docker connections of
    # their own, which test_abandoned_follow_streams_leave_nothing_behind would count as the
    # streams' leftovers.
    return start_gateway(workers="1", write_timeout=str(STREAM_DEADLINE), series_interval="3600s")


def logs(gateway, **query) -> list[dict]:
    status, body, headers = call(f"{gateway.url}/system/logs?{urlencode(query)}")
    assert status == 200, body
    assert headers["Content-Type"] == "application/x-ndjson"
    return [json.loads(line) for line in body.splitlines()]


@pytest.fixture(scope="module")
def chatty(gateway, watchdog_image):
    """A function with two replicas that logs a backlog, a very long line, then a tick a second."""
    fn = shared_name("chatty")
    body = {
        "service": fn,
        "image": watchdog_image,
        "envVars": {"log_burst": "20", "log_interval": "1", "log_long_line": str(LONG_LINE)},
        "labels": {"com.openfaas.scale.min": "2"},
    }
    status, text, _ = call(f"{gateway.url}/system/functions", "POST", body)
    assert status == 202, text

    def each_task_has_ticks():
        lines = logs(gateway, name=fn)
        per_task = {}
        for line in lines:
            per_task.setdefault(line["instance"], []).append(line["text"])
        return len(per_task) == 2 and all(sum(t.startswith("tick") for t in texts) >= 3 for texts in per_task.values())

    wait_for(each_task_has_ticks, timeout=90, what="both replicas to log")
    return fn


def test_every_line_has_five_fields_and_a_nanosecond_timestamp(gateway, chatty):
    lines = logs(gateway, name=chatty)
    assert len(lines) >= 2 * 24
    for line in lines:
        assert set(line) == {"name", "namespace", "instance", "timestamp", "text"}
        assert (line["name"], line["namespace"]) == (chatty, "openfaas-fn")
        assert TIMESTAMP.fullmatch(line["timestamp"]), line["timestamp"]
        assert line["instance"]


def test_lines_docker_splits_are_joined_again(gateway, chatty):
    long_lines = [line for line in logs(gateway, name=chatty) if line["text"].startswith("xxx")]
    assert [len(line["text"]) for line in long_lines] == [LONG_LINE, LONG_LINE]


@pytest.mark.parametrize("tail", [1, 4, 25])
def test_tail_returns_exactly_the_last_lines_of_all_replicas(gateway, chatty, tail):
    tailed = logs(gateway, name=chatty, tail=tail)
    assert len(tailed) == tail

    def reference_holding_the_tail():
        # A non-follow read of a Swarm service now and then ends before one task's newest lines
        # (Docker's log broker, seen in CI): read again until the reference has every tailed line.
        lines = sorted(logs(gateway, name=chatty), key=lambda line: line["timestamp"])
        return lines if all(line in lines for line in tailed) else None

    everything = wait_for(reference_holding_the_tail, timeout=30, what="a full read holding the tailed lines")
    newest = tailed[-1]["timestamp"]
    assert tailed == [line for line in everything if line["timestamp"] <= newest][-tail:]
    assert len({line["instance"] for line in tailed}) == (1 if tail == 1 else 2)


def test_since_excludes_older_lines(gateway, chatty):
    everything = sorted(logs(gateway, name=chatty), key=lambda line: line["timestamp"])
    cut = everything[len(everything) // 2]["timestamp"]
    recent = logs(gateway, name=chatty, since=cut)
    assert recent and all(line["timestamp"] >= cut for line in recent)
    assert len(recent) < len(everything)
    # The same moment written with a zone offset and without fractional seconds also works.
    whole_second = cut[:19]
    offset = logs(gateway, name=chatty, since=whole_second + "+00:00")
    assert all(line["timestamp"] >= whole_second for line in offset)


def test_instance_filters_to_one_task(gateway, chatty):
    instances = {line["instance"] for line in logs(gateway, name=chatty)}
    assert len(instances) == 2
    one = sorted(instances)[0]
    lines = logs(gateway, name=chatty, instance=one)
    assert lines and {line["instance"] for line in lines} == {one}
    status, body, _ = call(f"{gateway.url}/system/logs?name={chatty}&instance=doesnotexist0000000000000")
    assert status == 404 and b"doesnotexist" in body


def test_bad_queries_and_unknown_functions(gateway, chatty):
    assert call(f"{gateway.url}/system/logs?name={chatty}&tail=lots")[0] == 400
    assert call(f"{gateway.url}/system/logs?name={chatty}&since=yesterday")[0] == 400
    assert call(f"{gateway.url}/system/logs?name=no-such-function")[0] == 404


def _open_stream(gateway, query: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    parts = urlsplit(gateway.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("GET", f"/system/logs?{query}", headers=AUTH)
    return connection, connection.getresponse()


def test_follow_delivers_new_lines_while_open_then_ends_at_the_deadline(gateway, chatty):
    started = now_rfc3339_nano()
    opened = time.monotonic()
    connection, response = _open_stream(gateway, f"name={chatty}&follow=true&tail=1")
    try:
        assert response.status == 200
        first_new = None
        lines = 0
        while line := response.readline():
            lines += 1
            message = json.loads(line)
            if first_new is None and message["timestamp"] > started:
                # Written after the request began and read before the body ended: the gateway
                # flushes line by line instead of holding the body back.
                first_new = message
        ended = time.monotonic() - opened
    finally:
        connection.close()
    assert first_new is not None and first_new["text"].startswith("tick")
    assert lines >= 2
    # It ended by itself, at the deadline (a generous bound: this is not a timing test).
    assert STREAM_DEADLINE - 1 <= ended < STREAM_DEADLINE + 10


def _probe_connections(pid: int) -> set[str]:
    """The socket inodes of the process's TCP connections to a function's port: the readiness
    prober keeps one open to each replica it probes (app.dataplane.readiness.KeptAliveProbes),
    whenever it first probed them, so they are not the streams' to close."""
    found = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[2].rpartition(":")[2], 16) == FUNCTION_PORT:
                    found.add(f"socket:[{fields[9]}]")
    return found


def _descriptors(pid: int) -> tuple[int, int]:
    """(all descriptors, sockets) of a process but the prober's connections: Docker connections
    are sockets of the worker."""
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass  # closed since the listing: the clean-up we are waiting for
    probes = _probe_connections(pid)
    targets = [target for target in targets if target not in probes]
    return len(targets), sum(target.startswith("socket:") for target in targets)


def test_abandoned_follow_streams_leave_nothing_behind(gateway, chatty):
    (worker,) = gateway.worker_pids()

    def abandon(count: int, parallel: int) -> None:
        for _ in range(count // parallel):
            opened = [_open_stream(gateway, f"name={chatty}&follow=true&tail=1") for _ in range(parallel)]
            for connection, response in opened:
                assert response.status == 200
                response.readline()
                response.close()
                connection.close()

    def settled() -> tuple[int, int]:
        """The worker's descriptors once they stop falling: the watcher notices a departed client
        within half a second, so two looks a second apart that agree mean it has cleaned up."""
        looks = [_descriptors(worker)]

        def steady():
            looks.append(_descriptors(worker))
            return looks[-1] == looks[-2]

        wait_for(steady, timeout=30, interval=1, what="the worker's descriptors to settle")
        return looks[-1]

    abandon(10, 5)  # warm the connection pool the gateway keeps for ordinary Docker calls
    before = settled()
    abandon(100, 5)
    # Waited for, bounded: every abandoned stream's Docker connection closed.
    wait_for(lambda: all(now <= then for now, then in zip(_descriptors(worker), before)), timeout=30, interval=0.5,
             what="the abandoned streams' descriptors to be closed")
    after = _descriptors(worker)
    assert after[0] <= before[0], f"gateway descriptors {before[0]} -> {after[0]}"
    assert after[1] <= before[1], f"gateway sockets (Docker and client connections) {before[1]} -> {after[1]}"


def test_other_requests_are_served_while_a_follow_stream_is_open(gateway, chatty):
    assert len(gateway.worker_pids()) == 1
    connection, response = _open_stream(gateway, f"name={chatty}&follow=true&tail=1")
    received = []
    reader = threading.Thread(target=lambda: received.extend(iter(response.readline, b"")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: received, timeout=10, what="the first streamed line")
        for path in ("/healthz", "/system/functions", f"/system/function/{chatty}", "/system/info"):
            status, _, _ = call(gateway.url + path)
            assert status == 200, path
        assert reader.is_alive(), "the stream should still be open"
    finally:
        reader.join(STREAM_DEADLINE + 10)  # the stream ends by itself at its deadline
        connection.close()
    assert not reader.is_alive()


def test_headers_go_out_before_any_line(gateway, chatty):
    # Nothing is logged an hour from now, so the stream has no line to send until its deadline.
    seconds, _ = parse_rfc3339(now_rfc3339_nano())
    future = format_rfc3339_nano(seconds + 3600, 0)
    opened = time.monotonic()
    connection, response = _open_stream(gateway, f"name={chatty}&follow=true&since={future}")
    try:
        assert response.status == 200 and response.getheader("Content-Type") == "application/x-ndjson"
        assert time.monotonic() - opened < STREAM_DEADLINE  # not held back until the stream ends
        assert response.read() == b""  # and it ends cleanly at the deadline
    finally:
        connection.close()


def test_shutdown_lets_an_open_stream_run_until_the_grace_period(start_gateway, chatty):
    grace = 3
    gateway = start_gateway(workers="1", write_timeout="60", graceful_timeout=str(grace))
    connection, response = _open_stream(gateway, f"name={chatty}&follow=true&tail=1")
    try:
        assert response.readline()
        gateway.process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        # Not cut at once: ticks keep arriving after the signal ...
        after_signal = [line for line in iter(response.readline, b"")]
        assert len(after_signal) >= 1
        # ... but the stream and the server end within the grace period, not at write_timeout.
        gateway.process.wait(timeout=grace + 10)
        assert time.monotonic() - stopped < grace + 10
    finally:
        connection.close()
