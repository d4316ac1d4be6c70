"""The async worker (app.queue.worker) end to end in one process: a stored call invoked, retried in
the queue, and called back; dead letters, failed callbacks, and its threads stopping."""

from __future__ import annotations

import dataclasses
import functools
import json
import sqlite3
import threading
import time

from prometheus_client import REGISTRY

from app.config import Config
from app.queue.worker import WorkerSettings
from harness import free_port
from tests.upstream import Flaky, Receiver
from tests.waiting import wait_for

# The worker and the receiver answer within milliseconds: look often.
_wait = functools.partial(wait_for, timeout=10, interval=0.05)


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


def test_worker_threads_do_not_outlive_stop(setup):
    _, worker, _, _ = setup
    worker.start()
    worker.stop()
    # stop() returns once the loop's current take (1 s at most) has; earlier tests' workers were
    # stopped the same way.
    assert not [t for t in threading.enumerate() if t.name == "async-worker" and t.is_alive()]
