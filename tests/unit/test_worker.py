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
from app.domain.retries import gateway_policy
from app.queue import CANCELLED, DEAD, FAILED, QUEUED, RETRYING, RUNNING, SUCCEEDED
from app.queue.worker import WorkerSettings
from harness import free_port
from tests.unit.helpers import deployment
from tests.upstream import Flaky, Receiver
from tests.waiting import wait_for

# The worker and the receiver answer within milliseconds: look often.
_wait = functools.partial(wait_for, timeout=10, interval=0.05)


def test_call_is_stored_then_invoked_and_called_back(setup):
    client, worker, queue, callback = setup
    response = client.post("/async-function/echo/path?x=1", data=b"hello", headers={"X-Callback-Url": callback})
    assert response.status_code == 202
    call_id = response.headers["X-Call-Id"]
    assert queue.get(call_id).state == QUEUED  # stored before the 202, nothing invoked yet
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
    _wait(lambda: _active(queue) == 0)


def _active(queue) -> int:
    counts = queue.counts()
    return counts[QUEUED] + counts[RUNNING] + counts[RETRYING]


def test_worker_settings_are_the_configs():
    config = Config(async_concurrency=3, async_function_concurrency=2, async_max_attempts=5, async_claim_timeout=7.0,
                    async_result_max_bytes=10, async_retention=60.0)
    settings = WorkerSettings.from_config(config)
    assert (settings.concurrency, settings.per_function, settings.retry, settings.claim_timeout) == (
        3, 2, gateway_policy(5), 7.0)
    assert (settings.result_max_bytes, settings.retention) == (10, 60.0)


def test_a_retry_waits_in_the_queue_not_in_the_worker(setup):
    # With half a minute of backoff (the cap) the retry is still waiting when the test looks: released, with a
    # due time, and held by no one, so any worker may take it and a restart loses nothing.
    client, worker, queue, callback = setup
    worker.settings = dataclasses.replace(worker.settings, retry=dataclasses.replace(worker.settings.retry, min_wait=60.0))
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": callback}).headers["X-Call-Id"]
    worker.start()

    def released():
        with sqlite3.connect(queue.path) as db:
            row = db.execute("SELECT consumer, attempts, available_at FROM queue").fetchone()
        db.close()
        return row is not None and row[0] is None and row[1] == 1 and row[2] > time.time() + 20

    _wait(released)
    assert Flaky.seen[call_id] == 1 and Receiver.received == []
    record = queue.get(call_id)
    assert (record.state, record.attempts, record.status_code) == (RETRYING, 1, 503)


def test_the_last_try_s_outcome_goes_to_the_callback_even_a_failure(setup):
    client, worker, queue, callback = setup
    worker.settings = dataclasses.replace(worker.settings, retry=dataclasses.replace(worker.settings.retry, attempts=2))
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": callback}).headers["X-Call-Id"]
    worker.start()
    _wait(lambda: Receiver.received)
    _wait(lambda: _active(queue) == 0)
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
    assert (_active(queue), queue.counts()[DEAD]) == (0, 1)
    assert queue.get(call_id).error == "handed out 4 times, more than its 3 attempts"
    assert call_id not in Flaky.seen and Receiver.received == []
    assert f"async call {call_id} to echo moved to the dead letters" in caplog.text
    assert b"# HELP gateway_async_dead_letters " in client.get("/metrics").data


def test_a_failing_callback_is_retried_then_recorded_and_acknowledged(setup, caplog):
    client, worker, queue, callback = setup
    Receiver.failing = True
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": callback}).headers["X-Call-Id"]
    worker.start()
    _wait(lambda: _active(queue) == 0)
    assert len(Receiver.received) == 3
    assert queue.get(call_id).callback_delivered is False
    assert f"callback for async call {call_id}" in caplog.text


def test_a_receiver_that_is_down_gets_retries_with_backoff_then_a_failure_log_and_metric(setup, caplog):
    client, worker, queue, _ = setup
    before = _callbacks_failed("echo")
    down = f"http://hook:hunter2@127.0.0.1:{free_port()}/done"  # nothing listens there
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": down}).headers["X-Call-Id"]
    started = time.monotonic()
    worker.start()
    _wait(lambda: _active(queue) == 0)
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


def _deploy(client, **labels) -> None:
    assert client.put("/system/functions", json=deployment("echo", labels=labels)).status_code == 200


def test_the_record_tells_what_became_of_the_call(setup):
    client, worker, queue, callback = setup
    call_id = client.post("/async-function/echo", data=b"hello", headers={"X-Callback-Url": callback}).headers["X-Call-Id"]
    worker.start()
    _wait(lambda: queue.get(call_id).state == SUCCEEDED)
    record = queue.get(call_id)
    assert (record.attempts, record.status_code, record.error, record.callback_delivered) == (3, 201, None, True)
    assert record.accepted_at <= record.started_at <= record.finished_at
    assert record.result.status_code == 201 and json.loads(record.result.body)["length"] == 5
    assert ("Content-Type", "application/json") in record.result.headers and not record.result.truncated
    assert "X-Private" not in dict(record.result.headers), "hop-by-hop headers are not kept"
    assert Receiver.received[0]["headers"]["X-Call-State"] == SUCCEEDED


def test_a_result_is_kept_up_to_the_limit_and_flagged(setup):
    client, worker, queue, _ = setup
    worker.settings = dataclasses.replace(worker.settings, result_max_bytes=10)
    call_id = client.post("/async-function/echo", data=b"hello").headers["X-Call-Id"]
    worker.start()
    _wait(lambda: queue.get(call_id).state == SUCCEEDED)
    result = queue.get(call_id).result
    assert len(result.body) == 10 and result.truncated


def test_a_function_s_attempts_label_decides_its_tries(setup):
    client, worker, queue, callback = setup
    _deploy(client, **{"com.openfaas.retry.attempts": "1"})
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": callback}).headers["X-Call-Id"]
    worker.start()
    _wait(lambda: queue.get(call_id).state == FAILED)
    record = queue.get(call_id)
    assert (record.attempts, record.status_code, Flaky.seen[call_id]) == (1, 503, 1)
    assert record.error == "the function answered 503"
    assert Receiver.received[0]["headers"]["X-Function-Status"] == "503"


def test_a_status_not_in_the_codes_label_is_final(setup):
    client, worker, queue, _ = setup
    _deploy(client, **{"com.openfaas.retry.codes": "500,429"})
    call_id = client.post("/async-function/echo", data=b"x").headers["X-Call-Id"]
    worker.start()
    _wait(lambda: queue.get(call_id).state == FAILED)
    assert Flaky.seen[call_id] == 1


def test_retry_after_is_honoured_up_to_max_wait(setup):
    # The function asks for a minute; the label caps every wait at a tenth of a second.
    client, worker, queue, _ = setup
    Flaky.retry_after = "60"
    _deploy(client, **{"com.openfaas.retry.max_wait": "100ms", "com.openfaas.retry.min_wait": "50ms"})
    call_id = client.post("/async-function/echo", data=b"x").headers["X-Call-Id"]
    worker.start()
    _wait(lambda: queue.get(call_id).state == SUCCEEDED)
    assert Flaky.seen[call_id] == 3


def test_retry_after_is_waited_for(setup):
    client, worker, queue, _ = setup
    Flaky.retry_after = "60"
    call_id = client.post("/async-function/echo", data=b"x").headers["X-Call-Id"]
    worker.start()

    def waiting_a_while():
        with sqlite3.connect(queue.path) as db:
            row = db.execute("SELECT available_at FROM queue WHERE consumer IS NULL").fetchone()
        db.close()
        return row is not None and row[0] > time.time() + 20  # the gateway's longest wait, 30 s

    _wait(waiting_a_while)
    assert Flaky.seen[call_id] == 1


def test_a_cancelled_call_never_runs_and_its_callback_is_told_once(setup):
    client, worker, queue, callback = setup
    call_id = client.post("/async-function/echo", data=b"x", headers={"X-Callback-Url": callback}).headers["X-Call-Id"]
    assert client.delete(f"/async-function/{call_id}").status_code == 202
    worker.start()
    _wait(lambda: queue.get(call_id).callback_delivered)
    [told] = Receiver.received
    assert told["headers"]["X-Call-State"] == CANCELLED and told["headers"]["X-Call-Id"] == call_id
    assert "X-Function-Status" not in told["headers"] and told["body"] == b""
    assert call_id not in Flaky.seen and queue.get(call_id).state == CANCELLED
    assert _active(queue) == 0


def test_finished_records_are_removed_after_the_retention(setup):
    client, worker, queue, _ = setup
    worker.settings = dataclasses.replace(worker.settings, retention=0.0)
    call_id = client.post("/async-function/echo", data=b"x").headers["X-Call-Id"]
    worker.start()
    _wait(lambda: queue.get(call_id) is None or queue.get(call_id).state == SUCCEEDED)
    worker._last["expire"] = float("-inf")  # its next round expires, without waiting a minute
    _wait(lambda: queue.get(call_id) is None)


def test_the_worker_takes_only_as_many_calls_as_it_has_free_slots(setup):
    client, worker, queue, _ = setup
    worker.settings = dataclasses.replace(worker.settings, concurrency=2)
    worker._slots = threading.BoundedSemaphore(2)
    for _ in range(5):
        client.post("/async-function/echo", data=b"x")
    assert worker._free_slots() == 2
    worker._slots.release()
    assert worker._free_slots() == 1
