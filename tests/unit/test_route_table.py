"""What the gateway renders for nginx (app.dataplane.route_table): the table of each function's
tasks, and the configuration of the gateway's pool, the tasks' pool and the deadline."""

from __future__ import annotations

from app.dataplane.route_table import render_config, render_table
from tests.unit.helpers import CONFIG, TABLE


def test_each_function_gets_a_pool_of_its_tasks_and_its_names():
    text = render_table({"echo": ["10.0.1.5", "10.0.1.6"], "a-b": ["10.0.2.7"], "c.team": ["10.0.3.1"]}, **TABLE)
    assert text.splitlines()[1:] == [
        "pool fn_a-b 10.0.2.7:8080",
        "pool fn_c.team 10.0.3.1:8080",
        "pool fn_echo 10.0.1.5:8080 10.0.1.6:8080",
        # The default namespace's functions answer to both names; another's to its reference.
        "name a-b fn_a-b",
        "name a-b.openfaas-fn fn_a-b",
        "name c.team fn_c.team",
        "name echo fn_echo",
        "name echo.openfaas-fn fn_echo",
    ]


def test_an_empty_table_is_a_comment_alone():
    assert render_table({}, **TABLE).splitlines()[1:] == []


def test_the_configuration_defines_both_pools_and_the_deadline():
    assert render_config(**{**CONFIG, "upstream_timeout": 2.5}).splitlines()[1:] == [
        "proxy_read_timeout 2.5s;",
        "proxy_next_upstream_timeout 2.5s;",
        "upstream gateway_fallback {",
        "    server gateway:8080;",
        "    keepalive 1024;",
        "    keepalive_timeout 2s;",
        "}",
        "upstream functions {",
        "    server 0.0.0.1;",
        '    balancer_by_lua_block { require("routes").balance() }',
        "    keepalive 1024;",
        "    keepalive_timeout 4s;",
        "}",
        # Each worker counts the calls it routes and sends the sums to the gateway's call log.
        "init_worker_by_lua_block {",
        '    require("calls").start{host = "gateway", port = 5514, token = "t0k3n",',
        "        buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}}",
        "}",
    ]


def test_without_a_call_log_port_nginx_counts_nothing():
    assert "calls" not in render_config(**{**CONFIG, "call_log_port": 0})
