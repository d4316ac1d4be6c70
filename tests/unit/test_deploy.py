"""The deployment files agree with the application: nginx limits, proxy trust, compose settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from flask import request

from app import create_app
from app.config import Config
from app.web.streaming import HEARTBEAT
from harness import nginx_files
from tests.fakes import fake_runtime

ROOT = Path(__file__).resolve().parents[2]
NGINX = (ROOT / "deploy/nginx.conf").read_text()


def _seconds(directive: str, block: str = NGINX) -> list[int]:
    return [int(value) for value in re.findall(rf"^\s*{directive}\s+(\d+)s;", block, re.MULTILINE)]


def _location(pattern: str) -> str:
    match = re.search(rf"location {re.escape(pattern)} \{{\n(.*?)\n        \}}", NGINX, re.DOTALL)
    assert match, pattern
    return match.group(1)


def test_nginx_waits_longer_than_the_gateway_does():
    config = Config()
    calls = NGINX.replace(_location("@function_websocket"), "")  # a websocket's deadline is an idle one
    assert min(_seconds("proxy_read_timeout", calls)) > max(config.write_timeout, config.upstream_timeout)
    assert _seconds("client_body_timeout") == [int(config.read_timeout)]
    assert _seconds("send_timeout")[0] > config.write_timeout


def test_nginx_body_limit_on_system_routes_matches_the_gateway():
    assert "client_max_body_size 1m;" in _location("/system/")
    assert Config().max_body_bytes == 1024 * 1024


@pytest.mark.parametrize("location", ["= /system/logs", "= /system/events", "/function/", "/async-function/"])
def test_streams_are_not_buffered_by_nginx(location):
    block = _location(location)
    assert "proxy_buffering off;" in block


def test_nginx_outwaits_the_event_streams_heartbeat_and_deadline():
    assert _seconds("proxy_read_timeout", _location("= /system/events"))[0] > max(HEARTBEAT, Config().write_timeout)


COUNT = 'log_by_lua_block { require("calls").count() }'


def test_nginx_routes_function_calls_with_the_gateways_table_and_reports_them_to_it():
    config = Config()
    assert "include /etc/nginx/routes.conf;" in NGINX
    # Counted in nginx (deploy/nginx-calls.lua); where the sums go is the rendered configuration's.
    assert COUNT in _location("/function/")
    function = _location("/function/")
    assert "proxy_pass http://functions$function_rest$is_args$args;" in function
    # The pool comes from the table (deploy/nginx-routes.lua) before the location decides with it.
    assert function.index('require("routes").pool(ngx.var.function_name)') < function.index(
        "if ($function_pool = gateway_fallback)")
    # The function location's deadline is upstream_timeout, from the rendered table alone.
    assert not _seconds("proxy_read_timeout", _location("/function/"))
    # nginx's own 502 and 504 of a routed call are reported too.
    for errors in ("@function_failed", "@function_timeout"):
        assert COUNT in _location(errors)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert config.route_fallback == f"{list(compose)[0]}:{config.port}" == "gateway:8080"
    assert "functions" in compose["nginx"]["networks"]
    assert "./deploy/nginx-routes.lua:/etc/nginx/routes.lua:ro" in compose["nginx"]["volumes"]
    assert "./deploy/nginx-calls.lua:/etc/nginx/calls.lua:ro" in compose["nginx"]["volumes"]


def test_a_websocket_is_passed_on_with_its_upgrade_and_the_gateways_idle_deadline():
    config = Config()
    block = _location("@function_websocket")
    assert "proxy_set_header Upgrade $http_upgrade;" in block and "proxy_set_header Connection upgrade;" in block
    assert _seconds("proxy_read_timeout", block) == _seconds("proxy_send_timeout", block) == [int(config.read_timeout)]
    assert COUNT in block
    # Checked before the fallback: a websocket to a function nginx does not route goes to the
    # gateway through the same location.
    function = _location("/function/")
    assert function.index("return 419;") < function.index("return 418;")
    assert "gateway_fallback $request_uri;" in NGINX


def test_nginx_sets_the_forwarded_headers():
    for header in ("X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto $scheme", "X-Forwarded-Host $http_host"):
        assert f"proxy_set_header {header};" in NGINX


def _seen_by_the_app(config: Config, headers: dict[str, str]) -> dict:
    app = create_app(config, fake_runtime())

    @app.get("/whoami")
    def whoami():
        return {"addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    return app.test_client().get("/whoami", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.2"}).get_json()


FORWARDED = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "faas.example"}


def test_exactly_one_proxy_hop_is_trusted():
    seen = _seen_by_the_app(Config(basic_auth=False, forwarded_hops=1), FORWARDED)
    # The client may claim anything; only the address nginx appended is believed.
    assert seen == {"addr": "203.0.113.7", "scheme": "https", "host": "faas.example"}


def test_forwarded_headers_are_ignored_without_a_proxy():
    seen = _seen_by_the_app(Config(basic_auth=False), FORWARDED)
    assert seen == {"addr": "10.0.0.2", "scheme": "http", "host": "localhost"}


def test_compose_runs_the_gateway_unprivileged_with_host_ports():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert 'user: "${GATEWAY_UID:-10001}:${DOCKER_GID:-999}"' in compose
    assert "mode: host" in compose
    assert "forwarded_hops: \"1\"" in compose


def test_swarm_only_settings_are_in_the_stack_file_where_docker_compose_does_not_see_them():
    # docker-compose 1.29 warns about, and ignores, endpoint_mode and a secret's uid, gid or mode.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    stack = yaml.safe_load((ROOT / "deploy/stack.yml").read_text())["services"]
    for service in ("gateway", "nginx"):
        assert "endpoint_mode" not in compose[service].get("deploy", {})
        assert stack[service]["deploy"]["endpoint_mode"] == "dnsrr"
    assert compose["gateway"]["secrets"] == ["basic-auth-user", "basic-auth-password"]
    assert [(secret["source"], secret["uid"], secret["mode"]) for secret in stack["gateway"]["secrets"]] == [
        ("basic-auth-user", "${GATEWAY_UID:-10001}", 0o400),
        ("basic-auth-password", "${GATEWAY_UID:-10001}", 0o400),
    ]


def test_calls_nginx_does_not_route_get_the_gateways_deadline():
    config = Config()
    fallback = _location("@function_fallback")
    assert "error_page 418 = @function_fallback;" in _location("/function/")
    assert "proxy_pass http://gateway_fallback$request_uri;" in fallback
    assert _seconds("proxy_read_timeout", fallback) == [int(config.scale_from_zero_timeout + config.upstream_timeout) + 10]
    assert "proxy_request_buffering off;" in fallback and "proxy_buffering off;" in fallback


def test_every_request_for_the_gateway_reuses_connections():
    """A proxy_pass through a variable opens a connection per request; the pool keeps them."""
    assert re.findall(r"proxy_pass (\S+);", NGINX) == [
        "http://gateway_fallback",
        "http://gateway_fallback",
        "http://gateway_fallback",
        "http://functions$function_rest$is_args$args",
        "http://$function_upstream$websocket_uri",  # a pool too: the functions' or the gateway's
        "http://gateway_fallback$request_uri",
        "http://gateway_fallback",
        "http://gateway_fallback",
    ]


def test_every_file_mounted_into_nginx_is_in_the_digest_that_starts_it_again():
    """A running nginx keeps the files it started with; `make up` labels its container with their
    digest (scripts/up.sh), so docker-compose starts it again when any of them changes."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["nginx"]
    mounted = {volume.split(":")[0].removeprefix("./") for volume in compose["volumes"]}
    assert set(nginx_files()) == mounted
    assert compose["labels"]["com.openfaas.nginx-files"] == "${NGINX_FILES:-}"
