"""The call log nginx sends back (app.dataplane.calllog): its lines parsed, only the lines with
nginx's token counted, and a receiver that stops at once."""

from __future__ import annotations

import functools
import socket
import threading
import time

import pytest
from prometheus_client import REGISTRY

from app.dataplane.calllog import CallLog, parse
from tests.waiting import wait_for


@pytest.mark.parametrize(
    "datagram, expected",
    [
        (b"<190>Nov 30 23:59:59 faas: t0k3n fn_echo 200 0.004", ("t0k3n", "echo", 200, 0.004)),
        (b"<190>Nov 30 23:59:59 faas: t0k3n fn_a-b 502 1.250", ("t0k3n", "a-b", 502, 1.25)),
        (b"<190>Nov 30 23:59:59 faas: fn_echo 200 0.004", None),
        (b"<190>Nov 30 23:59:59 faas: t0k3n fn_echo 200", None),
        (b"<190>Nov 30 23:59:59 faas: t0k3n gateway_fallback 200 0.1", None),
        (b"<190>Nov 30 23:59:59 faas: t0k3n fn_echo ok 0.1", None),
        (b"<190>Nov 30 23:59:59 faas: t0k3n fn_\xff 200 0.1", None),
        (b"<190>Nov 30 23:59:59 faas: \xff fn_echo 200 0.1", None),
        (b"", None),
    ],
)
def test_call_lines_are_parsed(datagram, expected):
    assert parse(datagram) == expected


def _count(function: str, code: str) -> float:
    labels = {"function_name": function, "code": code}
    return REGISTRY.get_sample_value("gateway_function_invocation_total", labels) or 0.0


def test_lines_with_the_token_are_counted_whatever_function_they_name():
    # nginx names only pools of the routing table: a function deployed or deleted a moment ago
    # is still a real call.
    log = CallLog(0, "t0k3n")
    before = _count("echo", "200")
    assert log.record(b"<190>Nov 30 23:59:59 faas: t0k3n fn_echo 200 0.004")
    assert log.record(b"<190>Nov 30 23:59:59 faas: t0k3n fn_just-deployed 200 0.004")
    assert _count("echo", "200") == before + 1
    assert _count("just-deployed", "200") >= 1


@pytest.mark.parametrize("token", [b"forged", b"t0k3", b"t0k3nn", b"T0K3N"])
def test_a_line_without_nginxs_token_is_not_counted(token):
    # What a function could send to the port: any line but the one with the token, also naming
    # a function that does not exist, which would add a label.
    log = CallLog(0, "t0k3n")
    before = _count("echo", "200")
    assert not log.record(b"<190>Nov 30 23:59:59 faas: " + token + b" fn_echo 200 0.004")
    assert not log.record(b"<190>Nov 30 23:59:59 faas: " + token + b" fn_made-up 200 0.004")
    assert _count("echo", "200") == before
    assert _count("made-up", "200") == 0


def test_datagrams_on_the_port_are_recorded():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = CallLog(port, "t0k3n")
    log.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(3):
                sender.sendto(b"<190>Nov 30 23:59:59 faas: t0k3n fn_udp-echo 201 0.010", ("127.0.0.1", port))
        _wait_for(lambda: _count("udp-echo", "201") == 3)
    finally:
        log.stop()


def test_stop_ends_the_receiver_waiting_for_a_datagram_at_once():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = CallLog(port, "t0k3n")
    log.start()
    started = time.monotonic()
    log.stop()  # the receiver is blocked in recv, or about to be
    assert time.monotonic() - started < 2
    assert "call-log" not in [thread.name for thread in threading.enumerate()]


_wait_for = functools.partial(wait_for, timeout=5, interval=0.02)
