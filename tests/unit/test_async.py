"""Async invocation end to end in one process: accept, store, invoke, call back."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
from prometheus_client import REGISTRY

from app import create_app
from app.config import Config
from app.dataplane.upstreams import Upstreams
from app.errors import BackendUnavailable
from app.queue import open_queue
from app.queue.worker import WorkerSettings
from app.web.state import parts_of
from tests.fakes import fake_runtime
from tests.gateway import free_port
from tests.unit.conftest import deployment
from tests.upstream import Echo, Lookup, serve


class Receiver(BaseHTTPRequestHandler):
    """Collects callbacks; answers 500 while ``failing`` is set."""

    protocol_version = "HTTP/1.1"
    received: list[dict] = []
    failing = False

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = 500 if Receiver.failing else 200
        Receiver.received.append({"headers": dict(self.headers.items()), "body": body, "answered": status})
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Flaky(Echo):
    """Answers 503 twice per call id, then like Echo."""

    seen: dict[str, int] = {}

    def _answer(self):
        call_id = self.headers.get("X-Call-Id")
        Flaky.seen[call_id] = Flaky.seen.get(call_id, 0) + 1
        if Flaky.seen[call_id] <= 2:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super()._answer()

    do_POST = _answer


@pytest.fixture
def setup(tmp_path):
    Receiver.received, Receiver.failing = [], False
    with serve(Flaky) as function_port, serve(Receiver) as receiver_port:
        runtime = fake_runtime()
        upstreams = Upstreams(
            runtime.functions, scale_from_zero=True, wait_timeout=2, lookup=Lookup(runtime.functions), port=function_port
        )
        queue = open_queue(f"sqlite:///{tmp_path}/queue.db")
        config = Config(basic_auth=False, async_max_attempts=3)
        app = create_app(config, runtime, upstreams, queue)
        worker = parts_of(app).async_worker
        worker.settings = type(worker.settings)(**{**worker.settings.__dict__, "backoff": 0.05})
        client = app.test_client()
        client.post("/system/functions", json=deployment("echo"))
        yield client, worker, queue, f"http://127.0.0.1:{receiver_port}/done"
        worker.stop()


def _wait(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail("timed out")


def test_call_is_stored_then_invoked_and_called_back(setup):
    client, worker, queue, callback = setup
    response = client.post("/async-function/echo/path?x=1", data=b"hello", headers={"X-Callback-Url": callback})
    assert response.status_code == 202
    call_id = response.headers["X-Call-Id"]
    assert queue.depth() == 1  # stored before the 202, nothing invoked yet
    worker.start()
    _wait(lambda: Receiver.received)
    (callback_request,) = Receiver.received
    headers = callback_request["headers"]
    assert headers["X-Call-Id"] == call_id
    assert headers["X-Function-Name"] == "echo"
    assert headers["X-Function-Status"] == "201"
    assert float(headers["X-Duration-Seconds"]) >= 0
    seen = json.loads(callback_request["body"])
    assert (seen["method"], seen["path"], seen["length"]) == ("POST", "/path?x=1", 5)
    assert Flaky.seen[call_id] == 3  # two 503s retried with backoff
    _wait(lambda: queue.depth() == 0)


def test_worker_settings_are_the_configs():
    config = Config(async_concurrency=3, async_function_concurrency=2, async_max_attempts=5, async_claim_timeout=7.0)
    settings = WorkerSettings.from_config(config)
    assert (settings.concurrency, settings.per_function, settings.max_attempts, settings.claim_timeout) == (3, 2, 5, 7.0)


def test_a_retry_waits_in_the_queue_not_in_the_worker(setup):
    # With half a minute of backoff (the cap) the retry is still waiting when the test looks: released, with a
    # due time, and held by no one, so any worker may take it and a restart loses nothing.
    client, worker, queue, callback = setup
    worker.settings = dataclasses.replace(worker.settings, backoff=60.0)
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": callback}).headers["X-Call-Id"]
    worker.start()

    def released():
        with sqlite3.connect(queue.path) as db:
            row = db.execute("SELECT consumer, attempts, available_at FROM messages").fetchone()
        db.close()
        return row is not None and row[0] is None and row[1] == 1 and row[2] > time.time() + 20

    _wait(released)
    assert Flaky.seen[call_id] == 1 and Receiver.received == []


def test_the_last_try_s_outcome_goes_to_the_callback_even_a_failure(setup):
    client, worker, queue, callback = setup
    worker.settings = dataclasses.replace(worker.settings, max_attempts=2)
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": callback}).headers["X-Call-Id"]
    worker.start()
    _wait(lambda: Receiver.received)
    _wait(lambda: queue.depth() == 0)
    [callback_request] = Receiver.received
    assert callback_request["headers"]["X-Function-Status"] == "503"
    assert Flaky.seen[call_id] == 2


def test_a_call_handed_out_past_max_attempts_goes_to_the_dead_letters_uncalled(setup, caplog):
    # Three hand-outs (async_max_attempts) to consumers that never finished, as when the call
    # kills every worker that runs it; the fourth, the worker's reclaim, must not run it again.
    client, worker, queue, callback = setup
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": callback}).headers["X-Call-Id"]
    queue.take("died-1", 1, 0)
    queue.reclaim("died-2", 0, 1)
    assert [d.attempt for d in queue.reclaim("died-3", 0, 1)] == [3]
    worker.settings = dataclasses.replace(worker.settings, claim_timeout=0.1)
    worker.start()

    _wait(lambda: b"\ngateway_async_dead_letters 1.0\n" in client.get("/metrics").data)
    assert (queue.depth(), queue.dead_letters()) == (0, 1)
    assert call_id not in Flaky.seen and Receiver.received == []
    assert f"async call {call_id} to echo moved to the dead letters" in caplog.text
    assert b"# HELP gateway_async_dead_letters " in client.get("/metrics").data


def test_a_failing_callback_is_retried_then_recorded_and_acknowledged(setup, caplog):
    client, worker, queue, callback = setup
    Receiver.failing = True
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": callback}).headers["X-Call-Id"]
    worker.start()
    _wait(lambda: queue.depth() == 0)
    assert len(Receiver.received) == 3
    assert f"callback for async call {call_id}" in caplog.text


def test_a_receiver_that_is_down_gets_retries_with_backoff_then_a_failure_log_and_metric(setup, caplog):
    client, worker, queue, _ = setup
    before = _callbacks_failed("echo")
    down = f"http://hook:hunter2@127.0.0.1:{free_port()}/done"  # nothing listens there
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": down}).headers["X-Call-Id"]
    started = time.monotonic()
    worker.start()
    _wait(lambda: queue.depth() == 0)
    # Three attempts, with 0.05 s then 0.1 s of backoff between them.
    assert time.monotonic() - started >= 0.15
    assert f"callback for async call {call_id}" in caplog.text and "after 3 attempts" in caplog.text
    assert "hunter2" not in caplog.text and "***@127.0.0.1" in caplog.text
    assert _callbacks_failed("echo") == before + 1


def _callbacks_failed(function: str) -> float:
    return REGISTRY.get_sample_value("gateway_async_callbacks_failed_total", {"function_name": function}) or 0.0


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


def test_worker_threads_do_not_outlive_stop(setup):
    _, worker, _, _ = setup
    worker.start()
    worker.stop()
    # stop() returns once the loop's current take (1 s at most) has; earlier tests' workers were
    # stopped the same way.
    assert not [t for t in threading.enumerate() if t.name == "async-worker" and t.is_alive()]


def test_an_empty_callback_header_means_no_callback(setup):
    # Go's http.Header writes a header it was given as "", as clients that copy headers do.
    client, _, queue, _ = setup
    response = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": ""})
    assert response.status_code == 202
    (delivery,) = queue.take("test", 1, 0)
    assert delivery.call.callback_url is None
