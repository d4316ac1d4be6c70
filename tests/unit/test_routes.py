"""The routing table nginx calls functions with, and the call log it sends back."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from prometheus_client import REGISTRY

from app import create_app
from app.config import Config
from app.dataplane.calllog import CallLog, parse
from app.dataplane.route_table import render_routes
from app.dataplane.upstreams import Upstreams
from tests.fakes import fake_runtime
from tests.unit.conftest import AUTH, PASSWORD, USER, basic, deployment
from tests.upstream import Lookup

ROUTES = dict(port=8080, namespace="openfaas-fn", fallback="gateway:8080", upstream_timeout=60)


def test_each_function_gets_a_kept_alive_pool_of_its_tasks():
    text = render_routes({"echo": ["10.0.1.5", "10.0.1.6"], "a-b": ["10.0.2.7"]}, **ROUTES)
    echo = text[text.index("upstream fn_echo {") :].split("}", 1)[0]
    assert echo.splitlines()[1:] == [
        "    server 10.0.1.5:8080 max_fails=1 fail_timeout=2s;",
        "    server 10.0.1.6:8080 max_fails=1 fail_timeout=2s;",
        "    keepalive 1024;",
        "    keepalive_timeout 4s;",
    ]
    mapping = text[text.index("map $function_name $function_pool {") :]
    assert mapping.splitlines()[1:] == [
        "    default gateway_fallback;",
        "    a-b fn_a-b;",
        "    a-b.openfaas-fn fn_a-b;",
        "    echo fn_echo;",
        "    echo.openfaas-fn fn_echo;",
        "}",
    ]


def test_an_empty_table_still_defines_the_gateways_pool_the_map_and_the_deadline():
    assert render_routes({}, **{**ROUTES, "upstream_timeout": 2.5}).splitlines()[1:] == [
        "proxy_read_timeout 2.5s;",
        "proxy_next_upstream_timeout 2.5s;",
        "upstream gateway_fallback {",
        "    server gateway:8080;",
        "    keepalive 1024;",
        "}",
        "map $function_name $function_pool {",
        "    default gateway_fallback;",
        "}",
    ]


def test_the_table_holds_only_functions_with_a_running_task(config):
    runtime = fake_runtime()
    upstreams = Upstreams(runtime.functions, scale_from_zero=True, wait_timeout=1, lookup=Lookup(runtime.functions))
    app = create_app(config, runtime, upstreams)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    client.post("/system/functions", json=deployment("up"))
    client.post("/system/functions", json=deployment("idle"))
    client.post("/system/scale-function/idle", json={"replicas": 0})
    response = client.get("/_/routes")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert "upstream fn_up {" in response.text and "    up.openfaas-fn fn_up;" in response.text
    assert "idle" not in response.text


def test_the_table_needs_the_gateways_credentials(app):
    # It lists every namespace's task addresses, and functions reach the gateway on their networks.
    client = app.test_client()
    for headers in ({}, basic(USER, "wrong"), basic("wrong", PASSWORD), {"Authorization": "Bearer x"}):
        response = client.get("/_/routes", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == 'Basic realm="OpenFaaS"'
        assert "upstream" not in response.text
    response = client.get("/_/routes", headers=AUTH)
    assert response.status_code == 200 and "upstream gateway_fallback {" in response.text


def test_unknown_internal_paths_do_not_reveal_themselves(app):
    assert app.test_client().get("/_/nothing-here").status_code == 401
    assert app.test_client().get("/_/nothing-here", headers=AUTH).status_code == 404


def test_without_basic_auth_the_table_is_as_open_as_system(tmp_path):
    app = create_app(Config(basic_auth=False, state_dir=str(tmp_path)), fake_runtime())
    assert app.test_client().get("/_/routes").status_code == 200
    assert app.test_client().get("/system/functions").status_code == 200


@pytest.mark.parametrize(
    "datagram, expected",
    [
        (b"<190>Nov 30 23:59:59 faas: fn_echo 200 0.004", ("echo", 200, 0.004)),
        (b"<190>Nov 30 23:59:59 faas: fn_a-b 502 1.250", ("a-b", 502, 1.25)),
        (b"<190>Nov 30 23:59:59 faas: fn_echo 200", None),
        (b"<190>Nov 30 23:59:59 faas: gateway_fallback 200 0.1", None),
        (b"<190>Nov 30 23:59:59 faas: fn_echo ok 0.1", None),
        (b"<190>Nov 30 23:59:59 faas: fn_\xff 200 0.1", None),
        (b"", None),
    ],
)
def test_call_lines_are_parsed(datagram, expected):
    assert parse(datagram) == expected


def _count(function: str, code: str) -> float:
    labels = {"function_name": function, "code": code}
    return REGISTRY.get_sample_value("gateway_function_invocation_total", labels) or 0.0


def test_calls_of_existing_functions_are_counted_and_others_dropped():
    log = CallLog(0, lambda: {"echo"})
    before = _count("echo", "200")
    assert log.record(b"<190>Nov 30 23:59:59 faas: fn_echo 200 0.004")
    assert not log.record(b"<190>Nov 30 23:59:59 faas: fn_made-up 200 0.004")
    assert _count("echo", "200") == before + 1
    assert _count("made-up", "200") == 0


def test_a_function_deployed_later_is_counted_once_the_list_is_stale(monkeypatch):
    known = {"echo"}
    log = CallLog(0, lambda: set(known))
    assert not log.record(b"x: fn_later 200 0.1")
    known.add("later")
    monkeypatch.setattr(log, "_known_at", float("-inf"))
    assert log.record(b"x: fn_later 200 0.1")


def test_datagrams_on_the_port_are_recorded():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = CallLog(port, lambda: {"udp-echo"})
    log.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(3):
                sender.sendto(b"<190>Nov 30 23:59:59 faas: fn_udp-echo 201 0.010", ("127.0.0.1", port))
        _wait_for(lambda: _count("udp-echo", "201") == 3)
    finally:
        log.stop()


def test_stop_ends_the_receiver_waiting_for_a_datagram_at_once():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = CallLog(port, lambda: set())
    log.start()
    started = time.monotonic()
    log.stop()  # the receiver is blocked in recv, or about to be
    assert time.monotonic() - started < 2
    assert "call-log" not in [thread.name for thread in threading.enumerate()]


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
