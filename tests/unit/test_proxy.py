"""The proxy against a real HTTP server on loopback, with the Swarm adapter over an in-memory Docker behind it."""

from __future__ import annotations

import threading

import pytest

from app import create_app
from app.config import Config
from app.dataplane.upstreams import Upstreams
from app.web.schemas import FunctionDeploymentSchema
from app.web.state import parts_of
from tests.fakes import fake_runtime
from tests.unit.conftest import deployment
from tests.upstream import Echo, Lookup, serve


@pytest.fixture(scope="module")
def upstream():
    with serve(Echo) as port:
        yield port


@pytest.fixture
def proxy_app(upstream):
    runtime = fake_runtime()
    scales = []
    original = runtime.functions.scale

    def counting_scale(name, replicas, namespace=None):
        scales.append((name, replicas))
        return original(name, replicas, namespace)

    runtime.functions.scale = counting_scale
    upstreams = Upstreams(
        runtime.functions, scale_from_zero=True, wait_timeout=3, lookup=Lookup(runtime.functions), port=upstream
    )
    config = Config(basic_auth=False, upstream_timeout=1, forwarded_hops=1)
    app = create_app(config, runtime, upstreams)
    client = app.test_client()
    client.post("/system/functions", json=deployment("echo"))
    return client, runtime, scales


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_path_and_query_pass_through(proxy_app, method):
    client, _, _ = proxy_app
    response = client.open("/function/echo/a/b%2Fc/?x=1&y=%20z&x=2", method=method, data=b"payload")
    assert response.status_code == 201
    seen = response.get_json()
    assert seen["method"] == method
    assert seen["path"] == "/a/b%2Fc/?x=1&y=%20z&x=2"
    assert seen["length"] == 7


def test_head_passes_through_without_body(proxy_app):
    client, _, _ = proxy_app
    response = client.head("/function/echo/raw")
    assert response.status_code == 200 and response.data == b""


def test_namespace_suffix_and_bare_name(proxy_app):
    client, _, _ = proxy_app
    assert client.get("/function/echo.openfaas-fn/x").get_json()["path"] == "/x"
    assert client.get("/function/echo").get_json()["path"] == "/"
    assert client.get("/function/echo.elsewhere").status_code == 404


def test_headers_forwarding_and_call_tracking(proxy_app):
    client, _, _ = proxy_app
    response = client.post(
        "/function/echo",
        data=b"x",
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "drop me",
            "Keep-Alive": "timeout=5",
            "X-Custom": "kept",
            "X-Forwarded-For": "198.51.100.1",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "faas.example",
        },
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    seen = response.get_json()["headers"]
    assert "x-secret-hop" not in seen and "keep-alive" not in seen
    assert seen["x-custom"] == "kept"
    assert seen["x-forwarded-for"] == "198.51.100.1, 10.0.0.9"
    assert seen["x-forwarded-proto"] == "https" and seen["x-forwarded-host"] == "faas.example"
    assert seen["x-call-id"] == response.headers["X-Call-Id"]
    assert seen["x-start-time"] == response.headers["X-Start-Time"]
    # The function's own hop-by-hop headers do not reach the client either.
    assert "X-Private" not in response.headers and response.headers["X-Function"] == "echo"


def test_a_given_call_id_is_kept(proxy_app):
    client, _, _ = proxy_app
    response = client.get("/function/echo", headers={"X-Call-Id": "abc-123"})
    assert response.headers["X-Call-Id"] == "abc-123"
    assert response.get_json()["headers"]["x-call-id"] == "abc-123"


def test_redirects_are_returned_not_followed(proxy_app):
    client, _, _ = proxy_app
    response = client.get("/function/echo/redirect")
    assert response.status_code == 302 and response.headers["Location"] == "/elsewhere"


def test_large_bodies_stream_both_ways(proxy_app):
    client, _, _ = proxy_app
    data = bytes(range(256)) * 40_000  # 10 MB
    response = client.post("/function/echo/raw", data=data)
    assert response.status_code == 200 and response.data == data


def test_unknown_function_is_a_proxy_404(proxy_app):
    client, _, _ = proxy_app
    for path in ("/function/ghost", "/function/Not_Valid/x"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["X-OpenFaaS-Internal"] == "proxy"


def test_slow_function_is_a_proxy_504(proxy_app):
    client, _, _ = proxy_app
    response = client.get("/function/echo/slow")
    assert response.status_code == 504
    assert response.headers["X-OpenFaaS-Internal"] == "proxy"
    assert "echo" in response.get_data(as_text=True)


def test_refused_connection_is_a_proxy_502(proxy_app, monkeypatch):
    client, _, _ = proxy_app
    forwarder = parts_of(client.application).forwarder
    monkeypatch.setattr(forwarder.upstreams, "port", 9)  # discard port: nothing listens
    forwarder.upstreams.forget("echo")
    response = client.get("/function/echo")
    assert response.status_code == 502
    assert response.headers["X-OpenFaaS-Internal"] == "proxy"


class Answers:
    """DNS stand-in that gives one answer per lookup, in order, and keeps the last."""

    def __init__(self, *answers: list[str]):
        self.answers = list(answers)
        self.asked = 0

    def __call__(self, host: str) -> list[str]:
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def answered(upstream: int, lookup: Answers, state_dir) -> object:
    runtime = fake_runtime()
    upstreams = Upstreams(runtime.functions, scale_from_zero=False, wait_timeout=1, lookup=lookup, port=upstream)
    config = Config(basic_auth=False, state_dir=str(state_dir))
    client = create_app(config, runtime, upstreams).test_client()
    client.post("/system/functions", json=deployment("echo"))
    return client


def test_a_refused_address_is_forgotten_and_the_next_one_tried(upstream, tmp_path):
    # Only 127.0.0.1 listens on the port: the first two tasks refuse (they are gone), the third answers.
    lookup = Answers(["127.0.0.2"], ["127.0.0.3"], ["127.0.0.1"])
    response = answered(upstream, lookup, tmp_path).get("/function/echo")
    assert response.status_code == 201
    assert lookup.asked == 3


def test_three_refused_addresses_are_a_proxy_502(upstream, tmp_path):
    lookup = Answers(["127.0.0.2"], ["127.0.0.3"], ["127.0.0.4"], ["127.0.0.1"])
    response = answered(upstream, lookup, tmp_path).get("/function/echo")
    assert response.status_code == 502 and response.headers["X-OpenFaaS-Internal"] == "proxy"
    text = response.get_data(as_text=True)
    assert "could not be reached" in text and "Connection refused" in text
    # urllib3's own prefix (the connection object's repr) is cut off: nothing but the reason.
    assert "HTTPConnection" not in text and " object at " not in text
    assert lookup.asked == 3


def test_scale_from_zero_scales_once_for_concurrent_first_calls(proxy_app):
    client, runtime, scales = proxy_app
    client.post("/system/scale-function/echo", json={"serviceName": "echo", "replicas": 0})
    parts_of(client.application).forwarder.upstreams.forget("echo")
    calls = 5
    looked_up = threading.Semaphore(0)
    get_function, scale = runtime.functions.get_function, runtime.functions.scale

    def counted_get_function(name, namespace=None):
        looked_up.release()
        return get_function(name, namespace)

    def scale_once_all_have_looked(name, replicas, namespace=None):
        # Every call has found zero replicas, and the scaling one has looked again behind the
        # gate, before the scale lands: they all pile up behind the first.
        for _ in range(calls + 1):
            assert looked_up.acquire(timeout=5), "the calls did not all look the function up"
        return scale(name, replicas, namespace)

    runtime.functions.get_function, runtime.functions.scale = counted_get_function, scale_once_all_have_looked
    statuses = []

    def call():
        statuses.append(client.application.test_client().get("/function/echo").status_code)

    threads = [threading.Thread(target=call) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [201] * calls
    assert scales == [("echo", 0), ("echo", 1)]


def test_scale_from_zero_can_be_switched_off(upstream):
    runtime = fake_runtime()
    upstreams = Upstreams(
        runtime.functions, scale_from_zero=False, wait_timeout=1, lookup=Lookup(runtime.functions), port=upstream
    )
    client = create_app(Config(basic_auth=False), runtime, upstreams).test_client()
    client.post("/system/functions", json=deployment("echo"))
    client.post("/system/scale-function/echo", json={"serviceName": "echo", "replicas": 0})
    response = client.get("/function/echo")
    assert response.status_code == 503 and response.headers["X-OpenFaaS-Internal"] == "proxy"


def test_invocations_need_no_credentials(upstream):
    runtime = fake_runtime()
    upstreams = Upstreams(
        runtime.functions, scale_from_zero=True, wait_timeout=1, lookup=Lookup(runtime.functions), port=upstream
    )
    config = Config(basic_auth_user="u", basic_auth_password="p")
    client = create_app(config, runtime, upstreams).test_client()
    runtime.functions.deploy(FunctionDeploymentSchema().load(deployment("echo")))
    assert client.get("/function/echo").status_code == 201
