"""Websockets through the gateway's own proxy (app/dataplane/websocket.py): the upgrade asked of
a replica, the tunnel both ways, the idle deadline, and a function that does not upgrade; against
a server on loopback speaking raw HTTP; and the route, over a socket pair standing for gunicorn's
client connection. Through gunicorn and nginx: tests/e2e/test_websocket.py."""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
import types

import pytest

from app import create_app, metrics
from app.dataplane.forwarder import prepare_call
from app.dataplane.websocket import open_tunnel
from app.errors import UpstreamFailed, UpstreamTimeout
from tests.fakes import fake_runtime
from tests.unit.helpers import deployment

ACCEPT = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


class Replica:
    """One connection's worth of a function on loopback: records the request head, answers
    ``answer`` (with ``early`` bytes in the same write), then echoes what it gets upper-cased."""

    def __init__(self, answer: bytes = ACCEPT, early: bytes = b"", silent: bool = False):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answer, self.early, self.silent = answer, early, silent
        self.request = b""
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        connection, _ = self.listener.accept()
        with connection:
            while b"\r\n\r\n" not in self.request:
                self.request += connection.recv(4096)
            if self.silent:
                self.closed.wait(5)
                return
            connection.sendall(self.answer + self.early)
            while data := connection.recv(4096):
                connection.sendall(data.upper())
        self.closed.set()


class Upstreams:
    def __init__(self, port):
        self.port, self.forgotten = port, []

    def address(self, function):
        return f"127.0.0.1:{self.port}"

    def forget(self, function):
        self.forgotten.append(function)


def _call(headers=()):
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "abc=="), *headers]
    return prepare_call("echo", "GET", "/chat", "room=1", headers, peer="10.0.0.9", host="gw:8080", scheme="http")


def test_the_upgrade_is_asked_of_a_replica_and_bytes_flow_both_ways():
    replica = Replica(early=b"hello")
    tunnel = open_tunnel(Upstreams(replica.port), _call(), answer_timeout=5)
    request = replica.request.decode()
    assert request.startswith("GET /chat?room=1 HTTP/1.1\r\n")
    for header in ("Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: abc==", "X-Forwarded-For: 10.0.0.9"):
        assert f"\r\n{header}\r\n" in request
    client, ours = socket.socketpair()
    runner = threading.Thread(target=tunnel.run, args=(ours, 5), daemon=True)
    runner.start()
    received = b""
    while len(received) < len(ACCEPT) + 5:
        received += client.recv(4096)
    assert received == ACCEPT + b"hello"  # the 101 and what the function sent right after it
    client.sendall(b"ping")
    assert client.recv(4096) == b"PING"
    client.close()
    runner.join(5)
    assert not runner.is_alive() and replica.closed.wait(5)


def test_a_tunnel_idle_for_its_deadline_is_closed():
    replica = Replica()
    tunnel = open_tunnel(Upstreams(replica.port), _call(), answer_timeout=5)
    client, ours = socket.socketpair()
    started = time.monotonic()
    tunnel.run(ours, idle_timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 3
    assert replica.closed.wait(5)
    client.close()


def test_a_function_that_does_not_upgrade_is_a_502_saying_what_it_answered():
    replica = Replica(answer=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    with pytest.raises(UpstreamFailed, match="did not accept the websocket upgrade: it answered 'HTTP/1.1 200 OK'"):
        open_tunnel(Upstreams(replica.port), _call(), answer_timeout=5)


def test_a_function_that_does_not_answer_is_a_504():
    replica = Replica(silent=True)
    with pytest.raises(UpstreamTimeout):
        open_tunnel(Upstreams(replica.port), _call(), answer_timeout=0.3)
    replica.closed.set()


def test_a_replica_that_refuses_the_connection_is_a_502_and_forgotten():
    unused = socket.create_server(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()
    upstreams = Upstreams(port)
    with pytest.raises(UpstreamFailed, match="could not be reached"):
        open_tunnel(upstreams, _call(), answer_timeout=1)
    assert upstreams.forgotten == ["echo"] * 3  # each address tried, as the proxy does


# The route: werkzeug sends websocket upgrades only to rules marked websocket.

WEBSOCKET = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Key": "abc=="}


@pytest.fixture
def gateway(config):
    """An application over the fake runtime whose calls of ``echo`` go to the Replica set as
    ``gateway.replica``."""
    runtime = fake_runtime()
    holder = types.SimpleNamespace(replica=None)

    class ToReplica(Upstreams):
        def __init__(self):
            super().__init__(0)

        def address(self, function):
            return f"127.0.0.1:{holder.replica.port}"

    app = create_app(dataclasses.replace(config, basic_auth=False), runtime, ToReplica())
    app.test_client().post("/system/functions", json=deployment("echo"))
    holder.client = app.test_client()
    return holder


def test_a_websocket_needs_gunicorns_connection(gateway):
    response = gateway.client.get("/function/echo/chat", headers=WEBSOCKET)
    assert response.status_code == 501 and "gunicorn" in response.text
    assert response.headers["X-OpenFaaS-Internal"] == "proxy"


def test_a_websocket_is_tunnelled_over_the_clients_connection_and_counted_once(gateway, caplog):
    caplog.set_level("INFO")
    gateway.replica = Replica()
    client, ours = socket.socketpair()
    outcome = {}

    def serve():
        try:
            gateway.client.get("/function/echo/chat?room=1", headers={**WEBSOCKET, "X-Request-Id": "r1"},
                               environ_base={"gunicorn.socket": ours})
        except StopIteration:
            outcome["ended"] = "StopIteration"  # gunicorn closes the connection, writing nothing more

    before = metrics.invocation_counts().get("echo", 0)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    received = b""
    while not received.endswith(b"\r\n\r\n"):
        received += client.recv(4096)
    assert received == ACCEPT
    assert gateway.replica.request.startswith(b"GET /chat?room=1 HTTP/1.1\r\n")
    client.sendall(b"hi")
    assert client.recv(4096) == b"HI"
    client.close()
    thread.join(5)
    assert outcome == {"ended": "StopIteration"}
    assert metrics.invocation_counts().get("echo", 0) == before + 1
    assert re.search(r"websocket to echo closed after [0-9.]+s rid=r1", caplog.text)


def test_a_post_asking_for_a_websocket_is_refused(gateway):
    assert gateway.client.post("/function/echo", headers=WEBSOCKET).status_code == 405
