"""Websockets through the gateway's own proxy (app/dataplane/websocket.py): the upgrade asked of
a replica, the tunnel both ways, the idle deadline, and a function that does not upgrade; against
a server on loopback speaking raw HTTP. Through gunicorn and nginx: tests/e2e/test_websocket.py."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from app.dataplane.forwarder import prepare_call
from app.dataplane.websocket import is_websocket_upgrade, open_tunnel
from app.errors import UpstreamFailed, UpstreamTimeout

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


@pytest.mark.parametrize("headers, upgrade", [
    ([("Upgrade", "websocket"), ("Connection", "Upgrade")], True),
    ([("upgrade", "WebSocket"), ("connection", "keep-alive, Upgrade")], True),
    ([("Upgrade", "websocket")], False),
    ([("Connection", "Upgrade"), ("Upgrade", "h2c")], False),
    ([], False),
])
def test_what_asks_for_a_websocket(headers, upgrade):
    assert is_websocket_upgrade(headers) is upgrade


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
    assert upstreams.forgotten == ["echo"]
