"""Errors as HTTP answers (app.web.handlers): plain text for unknown paths and methods, 503 while
Docker is away, and a bare 500 for a bug."""

from __future__ import annotations

from tests.unit.helpers import deployment


def test_unknown_paths_and_methods_are_plain_text(client):
    assert client.get("/nowhere").status_code == 404
    response = client.patch("/system/functions")
    assert response.status_code == 405
    assert response.mimetype == "text/plain"
    assert "GET" in response.headers["Allow"]


def test_docker_outage_is_503_and_recovers(client, engine):
    client.post("/system/functions", json=deployment())
    engine.down = True
    response = client.get("/system/functions")
    assert response.status_code == 503
    assert "Docker" in response.get_data(as_text=True)
    health = client.get("/healthz")
    assert health.status_code == 500 and "Docker" in health.get_data(as_text=True)
    engine.down = False
    assert client.get("/system/functions").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_unexpected_errors_are_a_plain_500_without_traceback(client, runtime, monkeypatch):
    def boom():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(runtime.functions, "list_functions", boom)
    response = client.get("/system/functions")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "secret internals" not in text and "Traceback" not in text
