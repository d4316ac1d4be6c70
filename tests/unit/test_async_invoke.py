"""POST /async-function/ (app.web.blueprints.async_invoke): what is refused before a call is
stored, and an empty callback header."""

from __future__ import annotations

import pytest

from app.domain.retries import RetryPolicy
from app.errors import BackendUnavailable
from app.queue import QUEUED
from tests.unit.helpers import deployment


@pytest.mark.parametrize("url", ["ftp://x/y", "not a url", "/relative", "http://", "http://x:99999/", "http://[::1/"])
def test_bad_callback_urls_are_400(setup, url):
    client, _, queue, _ = setup
    response = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": url})
    assert response.status_code == 400 and "X-Callback-Url" in response.get_data(as_text=True)
    assert queue.counts()[QUEUED] == 0


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


def test_a_client_s_call_id_names_the_call_once(setup):
    client, _, queue, _ = setup
    first = client.post("/async-function/echo", data=b"x", headers={"X-Call-Id": "order-42"})
    assert first.status_code == 202 and first.headers["X-Call-Id"] == "order-42"
    again = client.post("/async-function/echo", data=b"y", headers={"X-Call-Id": "order-42"})
    assert again.status_code == 409 and "order-42 exists already" in again.get_data(as_text=True)
    assert queue.counts()[QUEUED] == 1


@pytest.mark.parametrize("call_id", ["with space", "a/b", "-leading", "x" * 129])
def test_a_client_s_call_id_that_cannot_name_a_record_is_400(setup, call_id):
    client, _, queue, _ = setup
    response = client.post("/async-function/echo", data=b"x", headers={"X-Call-Id": call_id})
    assert response.status_code == 400 and "Invalid X-Call-Id" in response.get_data(as_text=True)
    assert queue.counts()[QUEUED] == 0


def test_a_call_is_stored_with_its_function_s_retry_labels(setup):
    client, _, queue, _ = setup
    labels = {"com.openfaas.retry.attempts": "7", "com.openfaas.retry.codes": "500,429",
              "com.openfaas.retry.min_wait": "2s", "com.openfaas.queue.max_inflight": "3"}
    assert client.put("/system/functions", json=deployment("echo", labels=labels)).status_code == 200
    assert client.post("/async-function/echo", data=b"x").status_code == 202
    (delivery,) = queue.take("test", 1, 0)
    assert delivery.call.retry == RetryPolicy(7, frozenset({500, 429}), 2.0, 30.0)
    assert delivery.call.max_inflight == 3


def test_a_call_to_a_function_without_retry_labels_keeps_the_gateway_s_policy(setup):
    client, _, queue, _ = setup
    client.post("/async-function/echo", data=b"x")
    (delivery,) = queue.take("test", 1, 0)
    assert (delivery.call.retry, delivery.call.max_inflight) == (None, 0)
