"""Websockets through the stack `make up` starts, to a function whose own server speaks them
(images/websocket/echo.py), with the websocket-client library as the client.

Both paths: nginx's direct route to a routed function, and the gateway's own tunnel for a
function at zero replicas (the first upgrade scales it up) or called at gunicorn itself. Each
connection is one call in the metrics, status 101; a function that does not upgrade is refused
with its own answer through nginx, a 502 saying so through the gateway.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import websocket

from harness import ROOT
from tests.e2e.stack import at_gunicorn, auth, function_containers, gateway_log, routed_by_nginx
from tests.gateway import call
from tests.swarm import name
from tests.waiting import wait_for

IMAGE = "faas-test/websocket-echo:latest"


@pytest.fixture(scope="module")
def websocket_image(stack) -> str:
    """The echo function's image, built on the gateway image the stack just built."""
    base = stack.env.get("GATEWAY_IMAGE", "faas-swarm-py/gateway:latest")
    built = subprocess.run(["bash", str(ROOT / "images/websocket/build.sh"), base, IMAGE],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    return IMAGE


def deploy(stack, fn: str, image: str) -> None:
    body = {"service": fn, "image": image, "labels": {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "1"}}
    status, text, _ = call(f"{stack.url}/system/functions", "POST", body, auth(stack))
    assert status == 202, text
    wait_for(lambda: json.loads(call(f"{stack.url}/system/function/{fn}", headers=auth(stack))[1])["availableReplicas"] == 1,
             timeout=90, what=f"{fn} to be ready")


def calls(stack, fn: str, code: str) -> float:
    status, body, _ = call(f"{stack.url}/metrics", headers=auth(stack))
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith("gateway_function_invocation_total{") and f'function_name="{fn}"' in line \
                and f'code="{code}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def echo_through(url: str, request_id: str) -> None:
    """Open a websocket at ``url``, check text and binary echo both ways, close it."""
    ws = websocket.create_connection(url, timeout=30, header=[f"X-Request-Id: {request_id}"])
    try:
        for message in ("hello", "x" * 100_000):
            ws.send(message)
            assert ws.recv() == message
        ws.send_binary(bytes(range(256)))
        assert ws.recv() == bytes(range(256))
    finally:
        ws.close()


def ws_url(base: str, fn: str, rest: str = "/chat") -> str:
    return base.replace("http://", "ws://") + f"/function/{fn}{rest}"


def test_through_nginx_straight_to_the_function_counted_once(stack, websocket_image):
    fn = name("ws-direct")
    deploy(stack, fn, websocket_image)
    wait_for(lambda: routed_by_nginx(stack, fn), timeout=30, what=f"nginx to route {fn}")
    request_id = uuid.uuid4().hex
    echo_through(ws_url(stack.url, fn), request_id)
    assert request_id not in gateway_log(stack)  # nginx carried it itself
    wait_for(lambda: calls(stack, fn, "101") == 1, timeout=30, what="the websocket to be counted")


def test_through_the_gateway_after_a_scale_from_zero_counted_once(stack, websocket_image):
    fn = name("ws-zero")
    deploy(stack, fn, websocket_image)
    assert call(f"{stack.url}/system/scale-function/{fn}", "POST", {"replicas": 0}, auth(stack))[0] == 202
    # Gone, not only draining: a draining replica still takes calls while nothing else can.
    wait_for(lambda: not function_containers(fn), timeout=60, what=f"{fn}'s replica to stop")
    request_id = uuid.uuid4().hex
    echo_through(ws_url(stack.url, fn), request_id)
    # The gateway's tunnel, which logs each websocket when it ends.
    wait_for(lambda: f"rid={request_id}" in gateway_log(stack), timeout=30, what="the gateway to log the websocket")
    assert json.loads(call(f"{stack.url}/system/function/{fn}", headers=auth(stack))[1])["replicas"] == 1
    wait_for(lambda: calls(stack, fn, "101") == 1, timeout=30, what="the websocket to be counted")


def test_a_function_that_does_not_upgrade_is_refused(stack, websocket_image):
    fn = name("ws-refuse")
    deploy(stack, fn, websocket_image)
    wait_for(lambda: routed_by_nginx(stack, fn), timeout=30, what=f"nginx to route {fn}")
    # Through nginx: the function's own answer, which the client reports.
    with pytest.raises(websocket.WebSocketBadStatusException) as direct:
        websocket.create_connection(ws_url(stack.url, fn, "/chat?refuse=1"), timeout=30)
    assert direct.value.status_code == 200
    # Through the gateway: a 502 that says what the function answered.
    with pytest.raises(websocket.WebSocketBadStatusException) as tunnelled:
        websocket.create_connection(ws_url(at_gunicorn(stack).url, fn, "/chat?refuse=1"), timeout=30)
    assert tunnelled.value.status_code == 502
    assert b"did not accept the websocket upgrade: it answered 'HTTP/1.1 200 OK'" in tunnelled.value.resp_body
    # Without an upgrade the function is called as always.
    assert call(f"{stack.url}/function/{fn}")[0] == 200
