"""The call log nginx sends back (app.dataplane.calllog): its sums parsed, only the datagrams with
nginx's token counted, and a receiver that stops at once."""

from __future__ import annotations

import functools
import socket
import threading
import time

import pytest
from prometheus_client import REGISTRY

from app.dataplane.calllog import Calls, CallLog, parse
from tests.waiting import wait_for


ZEROS = (0,) * 12
# Two calls of echo ending 200 in 0.004 s (bucket <= 0.005) and 0.030 s (<= 0.05).
ECHO = b"fn_echo 200 2 0.034 1 0 0 1 " + b" ".join(b"0" for _ in range(10))


@pytest.mark.parametrize(
    "datagram, expected",
    [
        (b"t0k3n\n" + ECHO + b"\n", ("t0k3n", [Calls("echo", 200, 2, 0.034, (1, 0, 0, 1) + (0,) * 10)])),
        (b"t0k3n\n" + ECHO + b"\nfn_a-b.team 502 1 75.000 " + b"0 " * 13 + b"1\n",
         ("t0k3n", [Calls("echo", 200, 2, 0.034, (1, 0, 0, 1) + (0,) * 10),
                    Calls("a-b.team", 502, 1, 75.0, (0,) * 13 + (1,))])),
        (b"t0k3n\n", ("t0k3n", [])),
        # Any line that is not a pool's sums drops the whole datagram.
        (b"t0k3n\n" + ECHO + b"\ngateway_fallback 200 1 0.1 1 " + b"0 " * 13, None),
        (b"t0k3n\nfn_echo 200 3 0.034 1 0 0 1 " + b"0 " * 10, None),  # the buckets count 2 calls
        (b"t0k3n\nfn_echo 200 2 0.034 1 0 0 1\n", None),  # too few buckets
        (b"t0k3n\nfn_echo 200 2 0.034 3 -1 " + b"0 " * 12, None),
        (b"t0k3n\nfn_echo ok 2 0.034 1 0 0 1 " + b"0 " * 10, None),
        (b"t0k3n\nfn_\xff 200 2 0.034 1 0 0 1 " + b"0 " * 10, None),
        (b"\xff\n" + ECHO, None),
        (b"<190>Nov 30 23:59:59 faas: t0k3n fn_echo 200 0.004", None),  # one line per call, as before
        (b"", None),
    ],
)
def test_sums_are_parsed(datagram, expected):
    assert parse(datagram) == expected


def _count(function: str, code: str) -> float:
    labels = {"function_name": function, "code": code}
    return REGISTRY.get_sample_value("gateway_function_invocation_total", labels) or 0.0


def test_sums_with_the_token_are_counted_whatever_function_they_name():
    # nginx names only pools of the routing table: a function deployed or deleted a moment ago
    # is still a real call.
    log = CallLog(0, "t0k3n")
    before = _count("echo", "200")
    assert log.record(b"t0k3n\n" + ECHO + b"\n" + ECHO.replace(b"fn_echo", b"fn_just-deployed"))
    assert _count("echo", "200") == before + 2
    assert _count("just-deployed", "200") >= 2


@pytest.mark.parametrize("token", [b"forged", b"t0k3", b"t0k3nn", b"T0K3N", b""])
def test_sums_without_nginxs_token_are_not_counted(token):
    # What a function could send to the port: any datagram but one with the token, also naming
    # a function that does not exist, which would add a label.
    log = CallLog(0, "t0k3n")
    before = _count("echo", "200")
    assert not log.record(token + b"\n" + ECHO + b"\n" + ECHO.replace(b"fn_echo", b"fn_made-up"))
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
                sender.sendto(b"t0k3n\n" + ECHO.replace(b"fn_echo 200", b"fn_udp-echo 201"), ("127.0.0.1", port))
        _wait_for(lambda: _count("udp-echo", "201") == 6)
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
