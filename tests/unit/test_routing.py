"""GET /_/routes/table and GET /_/routes (app.web.blueprints.routing): the table of functions with a
running task and nginx's configuration, behind the gateway's credentials."""

from __future__ import annotations

import re
import threading
from dataclasses import replace

from app import create_app
from app.config import Config
from app.dataplane.readiness import ReadinessProber
from app.dataplane.route_table import render_table
from app.dataplane.upstreams import Upstreams
from app.domain.models import FunctionDeployment
from app.runtime.leader import FileLock
from app.web.blueprints import routing
from app.web.state import parts_of
from tests.fakes import fake_runtime
from tests.unit.helpers import AUTH, PASSWORD, USER, basic, deployment
from tests.upstream import Lookup
from tests.waiting import wait_for


def test_the_table_holds_only_functions_with_a_running_task(config):
    runtime = fake_runtime()
    upstreams = Upstreams(runtime.functions, scale_from_zero=True, wait_timeout=1, lookup=Lookup(runtime.functions))
    app = create_app(config, runtime, upstreams)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    client.post("/system/functions", json=deployment("up"))
    client.post("/system/functions", json=deployment("idle"))
    client.post("/system/scale-function/idle", json={"replicas": 0})
    response = client.get("/_/routes/table")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert "\npool fn_up " in response.text and "\nname up.openfaas-fn fn_up\n" in response.text
    assert "idle" not in response.text


def test_other_namespaces_stay_with_the_gateway_unless_nginx_routes_them(config):
    for route_namespaces in (True, False):
        runtime = fake_runtime()
        upstreams = Upstreams(runtime.functions, scale_from_zero=True, wait_timeout=1, lookup=Lookup(runtime.functions))
        client = create_app(replace(config, route_namespaces=route_namespaces), runtime, upstreams).test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
        client.post("/system/namespace/", json={"name": "team"})
        client.post("/system/functions", json=deployment("home"))
        client.post("/system/functions", json=deployment("away", namespace="team"))
        table = client.get("/_/routes/table").text
        assert "\npool fn_home " in table
        assert ("\npool fn_away.team " in table) is route_namespaces


def test_the_table_needs_the_gateways_credentials(app):
    # It lists every namespace's task addresses, and functions reach the gateway on their networks.
    client = app.test_client()
    for path in ("/_/routes/table", "/_/routes"):
        for headers in ({}, basic(USER, "wrong"), basic("wrong", PASSWORD), {"Authorization": "Bearer x"}):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["WWW-Authenticate"] == 'Basic realm="OpenFaaS"'
            assert "pool" not in response.text and "upstream" not in response.text
    assert client.get("/_/routes/table", headers=AUTH).text.startswith("# Rendered by the gateway")
    response = client.get("/_/routes", headers=AUTH)
    assert response.status_code == 200 and "upstream gateway_fallback {" in response.text


def test_unknown_internal_paths_do_not_reveal_themselves(app):
    assert app.test_client().get("/_/nothing-here").status_code == 401
    assert app.test_client().get("/_/nothing-here", headers=AUTH).status_code == 404


def test_without_basic_auth_the_table_is_as_open_as_system(tmp_path):
    app = create_app(Config(basic_auth=False, state_dir=str(tmp_path)), fake_runtime())
    assert app.test_client().get("/_/routes/table").status_code == 200
    assert app.test_client().get("/_/routes").status_code == 200
    assert app.test_client().get("/system/functions").status_code == 200


def test_the_table_gives_nginx_the_token_the_call_log_accepts(app, tmp_path):
    # nginx starts every datagram of sums with the token; one the gateway counts must carry it.
    config = app.test_client().get("/_/routes", headers=AUTH).text
    [token] = re.findall(r'token = "(\w+)"', config)
    call_log = parts_of(app).call_log
    assert call_log.token == token and len(token) == 32
    # Secret while the password is: another password, another token.
    other = create_app(Config(basic_auth_user=USER, basic_auth_password="other", state_dir=str(tmp_path)), fake_runtime())
    assert parts_of(other).call_log.token != token


def test_while_replicas_are_probed_the_table_holds_only_the_ready_ones(config):
    runtime = fake_runtime()
    app = create_app(config, runtime)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    client.post("/system/functions", json=deployment("up", labels={"com.openfaas.scale.min": "2"}))
    client.post("/system/functions", json=deployment("down"))
    (sick,) = [t.address for f in runtime.functions.function_endpoints() if f.name == "down" for t in f.tasks]
    up = sorted(t.address for f in runtime.functions.function_endpoints() if f.name == "up" for t in f.tasks)
    view = parts_of(app).readiness
    prober = ReadinessProber(runtime.functions, view.path, FileLock(view.path + ".lock"),
                             probe=lambda address, port, probe: address != sick, namespace=config.namespace)
    prober.probe_round()
    table = client.get("/_/routes/table").text
    assert re.findall(r"^pool fn_up (.*)$", table, re.MULTILINE) == [" ".join(f"{a}:8080" for a in up)]
    assert "fn_down" not in table
    statuses = {status["name"]: status for status in client.get("/system/functions").get_json()}
    assert (statuses["up"]["availableReplicas"], statuses["down"]["availableReplicas"]) == (2, 0)
    assert [i["ready"] for i in client.get("/system/function/down/instances").get_json()] == [False]
    assert [i["ready"] for i in client.get("/system/function/up/instances").get_json()] == [True, True]


def test_an_unchanged_document_is_a_304_with_no_body(config):
    # nginx's side asks every second with the ETag of what it has (deploy/nginx-routes.sh).
    runtime = fake_runtime()
    upstreams = Upstreams(runtime.functions, scale_from_zero=True, wait_timeout=1, lookup=Lookup(runtime.functions))
    client = create_app(config, runtime, upstreams).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    for path in ("/_/routes/table", "/_/routes"):
        first = client.get(path)
        tag = first.headers["ETag"]
        again = client.get(path, headers={"If-None-Match": tag})
        assert (again.status_code, again.data, again.headers["ETag"]) == (304, b"", tag)
        assert client.get(path, headers={"If-None-Match": '""'}).data == first.data
    tag = client.get("/_/routes/table").headers["ETag"]
    client.post("/system/functions", json=deployment("up"))
    changed = client.get("/_/routes/table", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and "\npool fn_up " in changed.text and changed.headers["ETag"] != tag


def test_an_unchanged_table_waits_as_asked_and_answers_a_change_when_it_sees_it(config, monkeypatch):
    runtime = fake_runtime()
    upstreams = Upstreams(runtime.functions, scale_from_zero=True, wait_timeout=1, lookup=Lookup(runtime.functions))
    app = create_app(config, runtime, upstreams)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    tag = client.get("/_/routes/table").headers["ETag"]
    renders = []
    monkeypatch.setattr(routing, "render_table", lambda *args, **kwargs: renders.append(1) or render_table(*args, **kwargs))

    # Unchanged for as long as asked (a shorter cap here): rendered again every WAIT_POLL, then a 304.
    monkeypatch.setattr(routing, "MAX_WAIT", 0.5)
    unchanged = client.get("/_/routes/table", headers={"If-None-Match": tag, "Prefer": "wait=60"})
    assert unchanged.status_code == 304 and len(renders) >= 2
    monkeypatch.setattr(routing, "MAX_WAIT", 30.0)

    # A function deployed while the request waits: answered once a render sees it.
    deployer = threading.Thread(target=lambda: (
        wait_for(lambda: len(renders) >= 4, timeout=10, interval=0.01, what="the request waiting"),
        runtime.functions.deploy(FunctionDeployment("late", "img:1"))))
    renders.clear()
    deployer.start()
    changed = client.get("/_/routes/table", headers={"If-None-Match": tag, "Prefer": "respond-async, wait=30"})
    deployer.join()
    assert changed.status_code == 200 and "\npool fn_late " in changed.text

    # A worker told to stop answers a waiting request at once: it must not hold up the shutdown.
    stopping = []
    parts_of(app).shutdown.follow(lambda: bool(stopping))
    renders.clear()
    threading.Thread(target=lambda: (
        wait_for(lambda: len(renders) >= 2, timeout=10, interval=0.01, what="the request waiting"),
        stopping.append(True))).start()
    latest = client.get("/_/routes/table").headers["ETag"]
    assert client.get("/_/routes/table", headers={"If-None-Match": latest, "Prefer": "wait=30"}).status_code == 304
    assert len(renders) < 10  # not the 150 renders of 30 s
    parts_of(app).shutdown.follow(lambda: False)

    # Without Prefer, or with another preference, an unchanged table is a 304 at once: rendered once.
    renders.clear()
    for headers in ({}, {"Prefer": "return=minimal"}, {"Prefer": "wait=0"}):
        latest = client.get("/_/routes/table").headers["ETag"]
        assert client.get("/_/routes/table", headers={"If-None-Match": latest, **headers}).status_code == 304
    assert len(renders) == 6
