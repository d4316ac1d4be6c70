"""POST /async-function/ (app.web.blueprints.async_invoke): what is refused before a call is
stored, and an empty callback header."""

from __future__ import annotations

import pytest

from app.errors import BackendUnavailable


@pytest.mark.parametrize("url", ["ftp://x/y", "not a url", "/relative", "http://", "http://x:99999/", "http://[::1/"])
def test_bad_callback_urls_are_400(setup, url):
    client, _, queue, _ = setup
    response = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": url})
    assert response.status_code == 400 and "X-Callback-Url" in response.get_data(as_text=True)
    assert queue.depth() == 0


def test_unknown_function_is_404(setup):
    client, _, _, _ = setup
    response = client.post("/async-function/ghost")
    assert response.status_code == 404 and response.headers["X-OpenFaaS-Internal"] == "proxy"


def test_a_queue_that_cannot_store_refuses_with_503(setup, monkeypatch):
    client, _, queue, _ = setup

    def unavailable(call):
        raise BackendUnavailable("The async queue is unreachable; the call was not accepted.")

    monkeypatch.setattr(queue, "put", unavailable)
    assert client.post("/async-function/echo", data=b"x").status_code == 503


def test_an_empty_callback_header_means_no_callback(setup):
    # Go's http.Header writes a header it was given as "", as clients that copy headers do.
    client, _, queue, _ = setup
    response = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": ""})
    assert response.status_code == 202
    (delivery,) = queue.take("test", 1, 0)
    assert delivery.call.callback_url is None
