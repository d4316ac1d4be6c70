"""The async queue: one behavioural suite run against the SQLite file and a real redis-server.

The Redis tests start a redis-server of their own on a free loopback port (append-only file,
fsync on every write, in a temporary folder) and stop it afterwards; they need no Docker.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from app.errors import BackendUnavailable
from app.domain.retries import RetryPolicy
from app.queue import (
    CANCELLED,
    DEAD,
    FAILED,
    QUEUED,
    RETRYING,
    RUNNING,
    STATES,
    SUCCEEDED,
    AsyncCall,
    CallFilter,
    CallResult,
    Outcome,
    open_queue,
)
from app.queue import redis as redis_queue
from app.queue import sqlite as sqlite_queue
from app.queue.sqlite import SQLiteQueue
from harness import free_port
from tests.queueing import make_call

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/queue.db"
    server = request.getfixturevalue("redis_server")
    with redis.Redis.from_url(server.url) as client:
        client.flushdb()
    return server.url


@pytest.fixture
def open_q(queue_url):
    """Opens queues on the test's store, as separate processes would; all closed afterwards."""
    opened = []

    def open_():
        queue = open_queue(queue_url)
        opened.append(queue)
        return queue

    yield open_
    for queue in opened:
        queue.close()


@pytest.fixture
def queue(open_q):
    return open_q()


def overwrite_payload(queue, call_id: str, payload: bytes) -> None:
    """Replace the bytes the backend stored for ``call_id`` with ``payload``, as no ``put`` would."""
    if isinstance(queue, SQLiteQueue):
        with sqlite3.connect(queue.path) as db:
            db.execute("UPDATE calls SET payload = ? WHERE call_id = ?", (payload, call_id))
        db.close()
        return
    queue._redis.hset(redis_queue.record_key(call_id), "payload", payload)


def stored_payload(queue, call_id: str) -> bytes:
    """The bytes the backend keeps for ``call_id``."""
    if isinstance(queue, SQLiteQueue):
        with sqlite3.connect(queue.path) as db:
            (payload,) = db.execute("SELECT payload FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        db.close()
        return payload
    return queue._redis.hget(redis_queue.record_key(call_id), "payload")


def active(queue) -> int:
    counts = queue.counts()
    return counts[QUEUED] + counts[RUNNING] + counts[RETRYING]


def done(state: str = SUCCEEDED, status: int = 200, body: bytes = b"ok", delivered: bool | None = True) -> Outcome:
    return Outcome(state, status, 0.25, None, CallResult(status, [("Content-Type", "text/plain")], body, False), delivered)


def test_put_take_finish(queue):
    calls = [make_call(n) for n in range(3)]
    for call in calls:
        assert queue.put(call) is True
    assert active(queue) == 3

    taken = queue.take("a", 10, 0)
    assert [delivery.call for delivery in taken] == calls
    assert [delivery.attempt for delivery in taken] == [1, 1, 1]
    assert len({delivery.message_id for delivery in taken}) == 3
    assert queue.take("b", 10, 0) == []
    assert active(queue) == 3, "held calls are still stored"

    for delivery in taken:
        queue.finish(delivery, done())
    assert active(queue) == 0 and queue.counts()[SUCCEEDED] == 3
    queue.finish(taken[0], done(FAILED, 500))  # finishing twice is harmless
    assert queue.get("call-0").state == SUCCEEDED


def test_a_call_id_is_stored_once(queue):
    assert queue.put(make_call(1)) is True
    assert queue.put(make_call(1, body=b"other")) is False
    assert [d.call.body for d in queue.take("a", 10, 0)] == [make_call(1).body]


def test_the_record_follows_the_call(queue):
    call = make_call(1, function="echo.team-a", namespace="team-a")
    queue.put(call)
    record = queue.get("call-1")
    assert (record.call_id, record.function, record.namespace, record.state, record.attempts) == (
        "call-1", "echo", "team-a", QUEUED, 0)
    assert record.accepted_at == call.enqueued_at and record.has_callback
    assert (record.started_at, record.finished_at, record.result, record.callback_delivered) == (None, None, None, None)

    [delivery] = queue.take("a", 1, 0)
    running = queue.get("call-1")
    assert (running.state, running.attempts) == (RUNNING, 1) and running.started_at >= call.enqueued_at

    queue.release(delivery, 60, 503, "status 503")
    retrying = queue.get("call-1")
    assert (retrying.state, retrying.attempts, retrying.status_code, retrying.error) == (RETRYING, 1, 503, "status 503")

    queue.release(delivery, 60, 500, "stale")  # the delivery was released: nothing changes
    assert queue.get("call-1") == retrying
    assert queue.reclaim("b", 0, 1) == [] and queue.take("b", 1, 0) == [], "released for a minute"


def test_a_finished_record_keeps_the_outcome_and_result(queue):
    queue.put(make_call(1))
    [delivery] = queue.take("a", 1, 0)
    result = CallResult(201, [("Content-Type", "application/json"), ("X-Dup", "1"), ("X-Dup", "2")], bytes(range(256)), True)
    queue.finish(delivery, Outcome(FAILED, 201, 1.5, "boom", result, False))
    record = queue.get("call-1")
    assert (record.state, record.status_code, record.duration_seconds, record.error) == (FAILED, 201, 1.5, "boom")
    assert record.result == result and record.callback_delivered is False
    assert record.finished_at >= record.started_at


def test_dead_lettered_call_is_dead_with_its_reason_and_never_handed_out_again(queue):
    queue.put(make_call(1))
    queue.put(make_call(2))
    queue.take("a", 1, 0)
    [past] = queue.reclaim("b", 0, 1)
    queue.dead_letter(past, "handed out too often")

    record = queue.get("call-1")
    assert (record.state, record.error, record.attempts) == (DEAD, "handed out too often", 2)
    assert record.finished_at is not None
    assert active(queue) == 1 and queue.counts()[DEAD] == 1
    assert queue.reclaim("c", 0, 10) == []
    assert [d.call.call_id for d in queue.take("c", 10, 0)] == ["call-2"]
    queue.finish(past, done())  # a late finish of the dead-lettered delivery is harmless
    assert queue.get("call-1").state == DEAD


def test_dead_letter_of_a_stale_delivery_is_ignored(queue):
    queue.put(make_call())
    [stale] = queue.take("a", 1, 0)
    [current] = queue.reclaim("b", 0, 1)
    queue.dead_letter(stale, "stale")
    assert queue.get("call-0").state == RUNNING, "the call stays with its current holder"

    queue.release(current, 60, None, "later")
    queue.dead_letter(current, "released")
    assert queue.get("call-0").state == RETRYING, "a released call is no longer held"


def test_take_hands_out_at_most_count(queue):
    for n in range(5):
        queue.put(make_call(n))
    assert [d.call.call_id for d in queue.take("a", 2, 0)] == ["call-0", "call-1"]
    assert [d.call.call_id for d in queue.take("a", 2, 0)] == ["call-2", "call-3"]


def test_take_is_fair_between_functions(queue):
    for n in range(50):
        queue.put(make_call(n, function="flood"))
    queue.put(make_call(100, function="quiet"))
    queue.put(make_call(101, function="quiet"))
    taken = [d.call.call_id for d in queue.take("a", 4, 0)]
    assert taken == ["call-0", "call-100", "call-1", "call-101"]


def test_take_is_fair_one_call_at_a_time(queue):
    # A worker with one free slot takes one call: the burst's age must not win every time.
    for n in range(50):
        queue.put(make_call(n, function="flood"))
    queue.put(make_call(100, function="quiet"))
    queue.put(make_call(101, function="quiet"))
    taken = [d.call.call_id for _ in range(5) for d in queue.take("a", 1, 0)]
    assert taken == ["call-0", "call-100", "call-1", "call-101", "call-2"]


def test_max_inflight_caps_a_function_across_consumers(queue, open_q):
    for n in range(6):
        queue.put(make_call(n, function="capped", max_inflight=2))
    queue.put(make_call(9, function="free"))
    other = open_q()
    first = queue.take("a", 1, 0)
    second = other.take("b", 10, 0)
    assert sorted(d.call.call_id for d in first + second) == ["call-0", "call-1", "call-9"]
    assert other.take("c", 10, 0) == []
    queue.finish(first[0], done())
    assert [d.call.call_id for d in other.take("c", 10, 0)] == ["call-2"]


def test_take_waits_for_a_call_and_no_longer(queue, open_q):
    started = time.monotonic()
    assert queue.take("a", 1, 0.2) == []
    assert 0.19 <= time.monotonic() - started < 1.0

    writer = open_q()
    timer = threading.Timer(0.1, writer.put, [make_call(1)])
    timer.start()
    started = time.monotonic()
    taken = queue.take("a", 1, 5.0)
    timer.join()
    assert [d.call for d in taken] == [make_call(1)]
    assert time.monotonic() - started < 1.5


def test_nothing_is_lost_across_reopen(open_q):
    first = open_q()
    for n in range(3):
        first.put(make_call(n))
    held = first.take("a", 1, 0)
    first.close()

    second = open_q()
    assert active(second) == 3
    [reclaimed] = second.reclaim("b", 0, 10)
    assert (reclaimed.call, reclaimed.attempt) == (held[0].call, 2)
    assert [d.call.call_id for d in second.take("b", 10, 0)] == ["call-1", "call-2"]


def test_reclaim_takes_over_only_after_idle_time(queue):
    queue.put(make_call())
    [dead] = queue.take("dead", 1, 0)
    assert queue.reclaim("alive", 0.3, 10) == []
    time.sleep(0.35)  # the idle time is what is tested: no condition to wait for

    [taken_over] = queue.reclaim("alive", 0.3, 10)
    assert (taken_over.message_id, taken_over.call, taken_over.attempt) == (dead.message_id, dead.call, 2)
    assert queue.reclaim("other", 0.3, 10) == [], "the new holder's claim is fresh"
    queue.finish(taken_over, done())
    queue.finish(dead, done(FAILED, 500))  # the dead consumer's late finish changes nothing
    assert active(queue) == 0 and queue.get("call-0").state == SUCCEEDED


def test_attempt_counts_every_hand_out(queue):
    queue.put(make_call())
    assert [d.attempt for d in queue.take("a", 1, 0)] == [1]
    assert [d.attempt for d in queue.reclaim("b", 0, 1)] == [2]
    [third] = queue.reclaim("c", 0, 1)
    assert third.attempt == 3 and queue.get("call-0").attempts == 3
    queue.release(third, 0, 502, "status 502")
    assert [d.attempt for d in queue.take("d", 1, 0)] == [4]


def test_release_hands_the_call_out_again_after_the_delay(queue):
    queue.put(make_call())
    [delivery] = queue.take("a", 1, 0)
    queue.release(delivery, 0.3, 503, "status 503")
    assert active(queue) == 1
    assert queue.take("a", 1, 0) == []
    assert queue.reclaim("a", 0, 1) == [], "a released call is no longer held"

    started = time.monotonic()
    [again] = queue.take("b", 1, 3.0)
    assert 0.2 <= time.monotonic() - started < 1.5
    assert (again.call, again.attempt) == (delivery.call, 2)
    queue.finish(again, done())
    assert active(queue) == 0


def test_release_of_a_stale_delivery_is_ignored(queue):
    queue.put(make_call())
    [stale] = queue.take("a", 1, 0)
    [current] = queue.reclaim("b", 0, 1)
    queue.release(stale, 0, None, None)
    assert queue.take("c", 1, 0) == [], "the call stays with its current holder"
    queue.release(current, 0, None, None)
    assert [d.attempt for d in queue.take("c", 1, 0)] == [3]


UNDECODABLE = [b"no header line", b'{"call_id": "x"}\nbody', b"\xff\xfe\n"]


@pytest.mark.parametrize("payload", UNDECODABLE)
def test_take_makes_an_undecodable_call_dead_and_hands_out_the_rest(queue, payload):
    queue.put(make_call(0))
    queue.put(make_call(1))
    queue.put(make_call(2))
    overwrite_payload(queue, "call-1", payload)

    taken = queue.take("a", 10, 0)
    assert [d.call.call_id for d in taken] == ["call-0", "call-2"]
    record = queue.get("call-1")
    assert record.state == DEAD and "decoded" in record.error
    assert stored_payload(queue, "call-1") == payload, "kept, bytes as stored"
    assert active(queue) == 2
    assert [d.call.call_id for d in queue.reclaim("b", 0, 10)] == ["call-0", "call-2"], "nothing else is held"


def test_reclaim_makes_an_undecodable_call_dead_and_hands_out_the_rest(queue):
    queue.put(make_call(0))
    queue.put(make_call(1))
    queue.take("dead", 2, 0)
    overwrite_payload(queue, "call-0", b"no header line")

    reclaimed = queue.reclaim("b", 0, 10)
    assert [(d.call.call_id, d.attempt) for d in reclaimed] == [("call-1", 2)]
    assert queue.get("call-0").state == DEAD and stored_payload(queue, "call-0") == b"no header line"
    assert active(queue) == 1


def test_cancel_stops_a_waiting_call_for_good(queue):
    queue.put(make_call(1, callback_url=None))
    record, changed = queue.cancel("call-1")
    assert changed and record.state == CANCELLED and record.finished_at is not None
    assert queue.take("a", 10, 0) == [] and active(queue) == 0
    assert queue.cancel("call-1") == (queue.get("call-1"), False), "cancelled once"


def test_a_cancelled_call_with_a_callback_is_handed_out_once_to_tell_it(queue):
    queue.put(make_call(1))
    queue.put(make_call(2))
    [running] = queue.take("a", 1, 0)
    queue.release(running, 60, 503, "status 503")  # retrying: a wait is cancelled too
    record, changed = queue.cancel("call-1")
    assert changed and record.state == CANCELLED

    deliveries = sorted(queue.take("b", 10, 0), key=lambda d: d.call.call_id)
    assert [(d.call.call_id, d.cancelled) for d in deliveries] == [("call-1", True), ("call-2", False)]
    assert queue.get("call-1").state == CANCELLED, "told, not run"
    queue.finish(deliveries[0], Outcome(CANCELLED, None, None, None, None, True))
    record = queue.get("call-1")
    assert (record.state, record.callback_delivered) == (CANCELLED, True)
    assert queue.take("c", 10, 0) == []
    assert [d.call.call_id for d in queue.reclaim("c", 0, 10)] == ["call-2"], "the cancelled call is gone"


def test_cancel_refuses_running_and_finished_calls_and_knows_no_stranger(queue):
    queue.put(make_call(1))
    queue.put(make_call(2))
    [first, second] = queue.take("a", 2, 0)
    queue.finish(second, done())
    assert queue.cancel("call-1") == (queue.get("call-1"), False) and queue.get("call-1").state == RUNNING
    assert queue.cancel("call-2")[1] is False and queue.get("call-2").state == SUCCEEDED
    assert queue.cancel("nobody") == (None, False)


def test_replay_puts_a_finished_call_back_with_its_history(queue):
    queue.put(make_call(1))
    [delivery] = queue.take("a", 1, 0)
    queue.dead_letter(delivery, "gave up")
    dead = queue.get("call-1")

    record, changed = queue.replay("call-1")
    assert changed and (record.state, record.attempts, record.error, record.finished_at) == (QUEUED, 0, None, None)
    assert record.accepted_at == dead.accepted_at
    assert [(run.state, run.attempts, run.error) for run in record.history] == [(DEAD, 1, "gave up")]
    [again] = queue.take("b", 1, 0)
    assert (again.call, again.attempt) == (delivery.call, 1)
    queue.finish(again, done(FAILED, 500))
    record, _ = queue.replay("call-1")
    assert [run.state for run in record.history] == [DEAD, FAILED]


def test_replay_refuses_active_calls_and_knows_no_stranger(queue):
    queue.put(make_call(1))
    assert queue.replay("call-1") == (queue.get("call-1"), False)
    queue.take("a", 1, 0)
    assert queue.replay("call-1")[1] is False
    assert queue.replay("nobody") == (None, False)
    assert [d.call.call_id for d in queue.reclaim("b", 0, 10)] == ["call-1"], "handed out once only"


def test_a_replayed_cancelled_call_runs(queue):
    queue.put(make_call(1))
    queue.cancel("call-1")
    record, changed = queue.replay("call-1")
    assert changed and record.state == QUEUED
    assert [(d.call.call_id, d.cancelled) for d in queue.take("a", 10, 0)] == [("call-1", False)]


def test_calls_lists_newest_first_by_filter_and_pages(queue):
    for n in range(7):
        queue.put(make_call(n, function="a" if n % 2 else "b.team", namespace="team" if n % 2 == 0 else "openfaas-fn"))
    [delivery] = queue.take("x", 1, 0)  # call-0
    queue.finish(delivery, done())

    records, cursor = queue.calls(CallFilter(), 3)
    assert [r.call_id for r in records] == ["call-6", "call-5", "call-4"] and cursor
    assert all(r.result is None for r in records), "lists leave results out"
    seen = [r.call_id for r in records]
    while cursor:
        records, cursor = queue.calls(CallFilter(), 3, cursor)
        seen += [r.call_id for r in records]
    assert seen == [f"call-{n}" for n in range(6, -1, -1)]

    assert [r.call_id for r in queue.calls(CallFilter(function="a"), 10)[0]] == ["call-5", "call-3", "call-1"]
    assert [r.call_id for r in queue.calls(CallFilter(namespace="team"), 10)[0]] == ["call-6", "call-4", "call-2", "call-0"]
    assert [r.call_id for r in queue.calls(CallFilter(function="b", state=SUCCEEDED), 10)[0]] == ["call-0"]
    assert queue.calls(CallFilter(function="b", namespace="openfaas-fn"), 10) == ([], "")
    assert queue.calls(CallFilter(), 7)[1] == "", "no next page after the last record"


def test_calls_refuses_a_cursor_it_never_gave(queue):
    with pytest.raises(ValueError):
        queue.calls(CallFilter(), 10, "not-a-cursor")


def test_expire_removes_finished_records_only(queue):
    for n in range(3):
        queue.put(make_call(n))
    queue.put(make_call(3, callback_url=None))
    first, second = queue.take("a", 2, 0)
    queue.finish(first, done())
    queue.cancel("call-2")  # its callback is still to be told
    queue.cancel("call-3")
    assert queue.expire(0) == 0
    assert queue.expire(time.time() + 1) == 2
    assert queue.get("call-0") is None and queue.get("call-3") is None
    assert queue.get("call-1").state == RUNNING and queue.get("call-2").state == CANCELLED


def test_counts_have_every_state(queue):
    assert queue.counts() == dict.fromkeys(STATES, 0)


def test_binary_bodies_and_odd_text_survive(queue):
    call = make_call(
        body=bytes(range(256)) * 64 + b"\n\r\n\x00",
        path="/a b/%2F/ü",
        query="x=%00&y=\n",
        headers=[("X-Ünïcode", "välue ☃"), ("X-Dup", "1"), ("X-Dup", "2"), ("X-Empty", "")],
        callback_url=None,
        retry=RetryPolicy(3, frozenset({500, 429}), 0.25, 8.0),
        max_inflight=3,
    )
    queue.put(call)
    assert [d.call for d in queue.take("a", 1, 0)] == [call]


def test_concurrent_consumers_never_share_a_call(queue, open_q):
    for n in range(120):
        queue.put(make_call(n, function=f"f{n % 3}"))
    consumers = [open_q() for _ in range(6)]
    received: list[list[str]] = [[] for _ in consumers]

    def consume(index: int) -> None:
        while taken := consumers[index].take(f"c{index}", 4, 0):
            for delivery in taken:
                received[index].append(delivery.call.call_id)
                consumers[index].finish(delivery, done())

    threads = [threading.Thread(target=consume, args=(index,)) for index in range(len(consumers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    everything = [call_id for ids in received for call_id in ids]
    assert sorted(everything) == sorted(f"call-{n}" for n in range(120))
    assert active(queue) == 0 and queue.counts()[SUCCEEDED] == 120


def test_redis_that_lost_its_data_still_takes_new_calls(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    queue = open_queue(redis_server.url)
    try:
        queue.put(make_call(1))
        [held] = queue.take("a", 1, 0)
        client.flushdb()
        queue.finish(held, done())  # the call is gone with the data: nothing to finish
        assert queue.get("call-1") is None and active(queue) == 0
        queue.put(make_call(2))
        assert [d.call.call_id for d in queue.take("a", 10, 0)] == ["call-2"]
    finally:
        queue.close()
        client.close()


def test_open_queue_rejects_other_urls():
    with pytest.raises(ValueError, match="'amqp'"):
        open_queue("amqp://guest@localhost/")
    with pytest.raises(ValueError, match="sqlite:///"):
        open_queue("sqlite://host/queue.db")


def test_unreachable_redis_is_backend_unavailable():
    queue = open_queue(f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(BackendUnavailable) as raised:
            queue.put(make_call())
        assert "127.0.0.1" in raised.value.message and "hunter2" not in raised.value.message
        assert raised.value.status == 503
        with pytest.raises(BackendUnavailable):
            queue.take("a", 1, 0)
    finally:
        queue.close()


def test_unusable_sqlite_file_is_backend_unavailable(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(BackendUnavailable, match="queue.db"):
        open_queue(f"sqlite:///{tmp_path}/file/queue.db")


def test_sqlite_creates_the_folder(tmp_path):
    queue = open_queue(f"sqlite:///{tmp_path}/new/folder/queue.db")
    queue.put(make_call())
    assert active(queue) == 1
    queue.close()


WRITER = """
import sys, time
from app.queue import CANCELLED, FAILED, SUCCEEDED, AsyncCall, CallResult, Outcome, open_queue
queue = open_queue(sys.argv[1])
for n in range(int(sys.argv[2])):
    queue.put(AsyncCall(f"call-{n}", "echo", "openfaas-fn", "POST", "", "", [], bytes([n]) * 1000, "http://cb/", 0.0))
succeeded, failed, released, dead, running = queue.take("w", 5, 0)
queue.finish(succeeded, Outcome(SUCCEEDED, 200, 0.1, None, CallResult(200, [], b"ok", False), True))
queue.finish(failed, Outcome(FAILED, 500, 0.1, "status 500", CallResult(500, [], b"no", False), True))
queue.release(released, 60, 503, "status 503")
queue.dead_letter(dead, "gave up")
queue.cancel("call-5")
print("done", flush=True)
time.sleep(60)
"""


def test_a_killed_gateway_loses_no_call_and_no_record(queue_url):
    # Calls in every state, then SIGKILL: each record is as it was left, and only the calls
    # waiting or held are handed out again.
    writer = subprocess.Popen([sys.executable, "-c", WRITER, queue_url, "50"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "done\n"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()

    queue = open_queue(queue_url)
    try:
        states = {n: queue.get(f"call-{n}").state for n in range(50)}
        assert [states[n] for n in range(6)] == [
            SUCCEEDED, FAILED, RETRYING, DEAD, RUNNING, CANCELLED]
        assert all(states[n] == QUEUED for n in range(6, 50))
        assert queue.get("call-0").result.body == b"ok"
        taken = queue.reclaim("a", 0, 100) + queue.take("a", 100, 0)
        ids = sorted(int(d.call.call_id.split("-")[1]) for d in taken)
        assert ids == [4, 5] + list(range(6, 50)), "the running call is taken over, the cancelled one told"
        assert [d.call.body for d in taken if d.call.call_id == "call-7"] == [bytes([7]) * 1000]
    finally:
        queue.close()


calls = st.builds(
    AsyncCall,
    call_id=st.text(),
    function=st.text(),
    namespace=st.text(),
    method=st.text(),
    path=st.text(),
    query=st.text(),
    headers=st.lists(st.tuples(st.text(), st.text())),
    body=st.binary(),
    callback_url=st.none() | st.text(),
    enqueued_at=st.floats(allow_nan=False, allow_infinity=False),
    retry=st.none() | st.builds(
        RetryPolicy,
        attempts=st.integers(1, 100),
        codes=st.frozensets(st.integers(100, 599)),
        min_wait=st.floats(0, 3600),
        max_wait=st.floats(0, 3600),
    ),
    max_inflight=st.integers(0, 10000),
)


@given(calls)
def test_a_call_survives_encoding(call):
    assert AsyncCall.from_bytes(call.to_bytes()) == call


@pytest.mark.parametrize("data", [b"", b"no header line", b"{}\nbody", b"[1]\n", b'{"call_id": "x"}\n'])
def test_decoding_rejects_what_encoding_never_made(data):
    with pytest.raises(ValueError):
        AsyncCall.from_bytes(data)


def test_sqlite_moves_an_earlier_version_s_file_into_records(tmp_path):
    # The schema before records: calls in ``messages`` (one held, one undecodable) and a dead letter.
    path = tmp_path / "queue.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL, consumer TEXT,"
                   " claimed_at REAL, attempts INTEGER NOT NULL, available_at REAL NOT NULL)")
        db.execute("CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id INTEGER NOT NULL,"
                   " payload BLOB NOT NULL, attempts INTEGER NOT NULL, reason TEXT NOT NULL, dead_at REAL NOT NULL)")
        old = make_call(1).to_bytes().replace(b',"retry":null,"max_inflight":0', b"")
        assert b"retry" not in old
        db.executemany("INSERT INTO messages (payload, consumer, claimed_at, attempts, available_at) VALUES (?, ?, ?, ?, 0)",
                       [(old, "gone", 1.0, 2), (b"no header line", None, None, 0)])
        db.execute("INSERT INTO dead_letters (message_id, payload, attempts, reason, dead_at) VALUES (9, ?, 5, 'gave up', 1)",
                   (make_call(2).to_bytes(),))
    db.close()

    queue = open_queue(f"sqlite:///{path}")
    try:
        assert [(d.call, d.attempt) for d in queue.take("a", 10, 0)] == [(make_call(1), 3)]
        assert (queue.get("call-2").state, queue.get("call-2").error) == (DEAD, "gave up")
        assert queue.get("legacy-2").state == DEAD and stored_payload(queue, "legacy-2") == b"no header line"
        assert queue.replay("call-2")[1] and [d.call for d in queue.take("a", 10, 0)] == [make_call(2)]
    finally:
        queue.close()


def test_redis_moves_an_earlier_version_s_keys_into_records(redis_server):
    # The keys before records: the stream and its group (one call held, one undecodable), a
    # released call in the delayed set, and a dead letter.
    old = make_call(1).to_bytes().replace(b',"retry":null,"max_inflight":0', b"")
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
        client.xgroup_create(redis_queue.LEGACY_STREAM, redis_queue.LEGACY_GROUP, id="0", mkstream=True)
        client.xadd(redis_queue.LEGACY_STREAM, {"attempts": 1, "call": old})
        client.xreadgroup(redis_queue.LEGACY_GROUP, "gone", {redis_queue.LEGACY_STREAM: ">"}, count=1)
        undecodable = client.xadd(redis_queue.LEGACY_STREAM, {"attempts": 0, "call": b"no header line"}).decode()
        client.zadd(redis_queue.LEGACY_DELAYED, {b"1-0 2 " + make_call(3).to_bytes(): 0})
        client.xadd(redis_queue.LEGACY_DEAD, {"entry": "2-0", "reason": "gave up", "delivered": 3, "attempts": 2,
                                              "call": make_call(2).to_bytes()})

    queue = open_queue(redis_server.url)
    try:
        assert [(d.call, d.attempt) for d in queue.take("a", 10, 0)] == [(make_call(1), 3), (make_call(3), 3)]
        dead = queue.get("call-2")
        assert (dead.state, dead.error, dead.attempts) == (DEAD, "gave up", 5)
        legacy = f"legacy-{undecodable}"
        assert queue.get(legacy).state == DEAD and stored_payload(queue, legacy) == b"no header line"
        assert queue._redis.exists(redis_queue.LEGACY_STREAM, redis_queue.LEGACY_DELAYED, redis_queue.LEGACY_DEAD) == 0
        assert queue.replay("call-2")[1] and [d.call for d in queue.take("a", 10, 0)] == [make_call(2)]
    finally:
        queue.close()


def test_sqlite_expires_in_batches_until_done(tmp_path, monkeypatch):
    monkeypatch.setattr("app.queue.sqlite._EXPIRE_BATCH", 2)
    queue = open_queue(f"sqlite:///{tmp_path}/queue.db")
    try:
        for n in range(5):
            queue.put(make_call(n, callback_url=None))
            queue.cancel(f"call-{n}")
        assert queue.expire(time.time() + 1) == 5 and queue.counts()[CANCELLED] == 0
    finally:
        queue.close()


class _Clock:
    """time for app.queue.sqlite: monotonic time that moves only when it sleeps."""

    def __init__(self):
        self.now = 0.0
        self.time = time.time

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_an_idle_sqlite_queue_is_asked_less_and_less_often_until_a_call_comes(tmp_path, monkeypatch):
    """Every worker process polls: an idle gateway asked its queue forty times a second."""
    clock = _Clock()
    monkeypatch.setattr(sqlite_queue, "time", clock)
    queue = SQLiteQueue(str(tmp_path / "queue.db"))
    looks: list[float] = []
    take_ready = queue._take_ready
    monkeypatch.setattr(queue, "_take_ready", lambda *args: looks.append(clock.now) or take_ready(*args))
    assert queue.take("a", 1, 1.0) == []
    assert looks == pytest.approx([0, 0.05, 0.15, 0.35, 0.75, 1.0])
    del looks[:]
    assert queue.take("a", 1, 1.0) == []
    assert [b - a for a, b in zip(looks, looks[1:])] == pytest.approx([0.4, 0.4, 0.2])  # still idle
    queue.put(make_call(1))  # a call put here: asked often again
    assert [d.call.call_id for d in queue.take("a", 1, 1.0)] == [make_call(1).call_id]
    del looks[:]
    assert queue.take("a", 1, 0.2) == []
    assert looks == pytest.approx([clock.now - 0.2, clock.now - 0.15, clock.now - 0.05, clock.now])
