"""The routing table nginx calls functions with (app.dataplane.route_table): a kept-alive pool per
function, and the gateway's own pool and deadline even when empty."""

from __future__ import annotations

from app.dataplane.route_table import render_routes
from tests.unit.helpers import ROUTES


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
        "map $function_pool $call_log_token { default t0k3n; }",
        "upstream gateway_fallback {",
        "    server gateway:8080;",
        "    keepalive 1024;",
        "}",
        "map $function_name $function_pool {",
        "    default gateway_fallback;",
        "}",
    ]
