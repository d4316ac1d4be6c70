"""Docker going away and coming back, without restarting the gateway.

The gateway talks to Docker through a socket relay the test controls, so the real daemon keeps
running for the rest of the suite while the gateway sees it vanish and return.
"""

from __future__ import annotations

import os
import socket
import threading

import pytest

from app import create_app
from app.config import Config
from app.errors import BackendUnavailable
from app.runtime.swarm.assembly import swarm_runtime

DOCKER_SOCKET = "/var/run/docker.sock"


class SocketRelay:
    """Forwards connections from a Unix socket to the Docker socket while switched on."""

    def __init__(self, path: str):
        self.path = path
        self.listener: socket.socket | None = None
        self.connections: list[socket.socket] = []

    def start(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(self.path)
        self.listener.listen(16)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self) -> None:
        """Close the listener and every relayed connection, as a daemon restart would."""
        listener, self.listener = self.listener, None
        if listener:
            listener.close()
        for conn in self.connections:
            conn.close()
        self.connections.clear()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(DOCKER_SOCKET)
            self.connections += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def relay(tmp_path, docker_api, monkeypatch):
    relay = SocketRelay(str(tmp_path / "docker.sock"))
    relay.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{relay.path}")
    yield relay
    relay.stop()


def test_requests_get_503_while_docker_is_away_and_recover(relay):
    app = create_app(Config(basic_auth=False), swarm_runtime(Config(docker_timeout=5)))
    client = app.test_client()
    assert client.get("/system/functions").status_code == 200

    relay.stop()
    response = client.get("/system/functions")
    assert response.status_code == 503
    assert "Docker is unreachable" in response.get_data(as_text=True)
    health = client.get("/healthz")
    assert health.status_code == 500 and "Docker" in health.get_data(as_text=True)
    assert client.post("/system/secrets", json={"name": "x", "value": "y"}).status_code == 503

    relay.start()
    assert client.get("/system/functions").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_gateway_refuses_to_start_without_docker(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(BackendUnavailable, match="Docker is unreachable"):
        swarm_runtime(Config(basic_auth=False)).health.prepare()
