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
from app.queue import AsyncCall, open_queue
from app.queue import redis as redis_queue
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


def store_raw(queue, payload: bytes, held_by: str | None = None) -> None:
    """Store ``payload`` where the backend keeps calls, as no ``put`` would; with ``held_by``, that
    consumer holds it, as after a take."""
    if isinstance(queue, SQLiteQueue):
        with sqlite3.connect(queue.path) as db:
            db.execute(
                "INSERT INTO messages (payload, consumer, claimed_at, attempts, available_at) VALUES (?, ?, ?, ?, 0)",
                (payload, held_by, time.time() if held_by else None, 1 if held_by else 0),
            )
        db.close()
        return
    queue.depth()  # creates the consumer group
    client = queue._redis
    client.xadd(redis_queue.STREAM, {"attempts": 0, "call": payload})
    if held_by:
        assert client.xreadgroup(redis_queue.GROUP, held_by, {redis_queue.STREAM: ">"}, count=1)


def dead_payloads(queue) -> list[bytes]:
    """The stored bytes of every dead letter, oldest first."""
    if isinstance(queue, SQLiteQueue):
        with sqlite3.connect(queue.path) as db:
            rows = db.execute("SELECT payload FROM dead_letters ORDER BY id").fetchall()
        db.close()
        return [payload for (payload,) in rows]
    return [fields[b"call"] for _, fields in queue._redis.xrange(redis_queue.DEAD)]


def test_put_take_ack(queue):
    calls = [make_call(n) for n in range(3)]
    for call in calls:
        queue.put(call)
    assert queue.depth() == 3

    taken = queue.take("a", 10, 0)
    assert [delivery.call for delivery in taken] == calls
    assert [delivery.attempt for delivery in taken] == [1, 1, 1]
    assert len({delivery.message_id for delivery in taken}) == 3
    assert queue.take("b", 10, 0) == []
    assert queue.depth() == 3, "held calls are still stored"

    for delivery in taken:
        queue.ack(delivery)
    assert queue.depth() == 0
    queue.ack(taken[0])  # acking twice is harmless


def test_take_hands_out_at_most_count(queue):
    for n in range(5):
        queue.put(make_call(n))
    assert [d.call.call_id for d in queue.take("a", 2, 0)] == ["call-0", "call-1"]
    assert [d.call.call_id for d in queue.take("a", 2, 0)] == ["call-2", "call-3"]


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
    assert second.depth() == 3
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
    queue.ack(taken_over)
    queue.ack(dead)  # the dead consumer's late ack changes nothing
    assert queue.depth() == 0


def test_attempt_counts_every_hand_out(queue):
    queue.put(make_call())
    assert [d.attempt for d in queue.take("a", 1, 0)] == [1]
    assert [d.attempt for d in queue.reclaim("b", 0, 1)] == [2]
    [third] = queue.reclaim("c", 0, 1)
    assert third.attempt == 3
    queue.release(third, 0)
    assert [d.attempt for d in queue.take("d", 1, 0)] == [4]


def test_release_hands_the_call_out_again_after_the_delay(queue):
    queue.put(make_call())
    [delivery] = queue.take("a", 1, 0)
    queue.release(delivery, 0.3)
    assert queue.depth() == 1
    assert queue.take("a", 1, 0) == []
    assert queue.reclaim("a", 0, 1) == [], "a released call is no longer held"

    started = time.monotonic()
    [again] = queue.take("b", 1, 3.0)
    assert 0.2 <= time.monotonic() - started < 1.5
    assert (again.call, again.attempt) == (delivery.call, 2)
    queue.ack(again)
    assert queue.depth() == 0


def test_release_of_a_stale_delivery_is_ignored(queue):
    queue.put(make_call())
    [stale] = queue.take("a", 1, 0)
    [current] = queue.reclaim("b", 0, 1)
    queue.release(stale, 0)
    assert queue.take("c", 1, 0) == [], "the call stays with its current holder"
    queue.release(current, 0)
    assert [d.attempt for d in queue.take("c", 1, 0)] == [3]


UNDECODABLE = [b"no header line", b'{"call_id": "x"}\nbody', b"\xff\xfe\n"]


@pytest.mark.parametrize("payload", UNDECODABLE)
def test_take_moves_an_undecodable_call_to_the_dead_letters_and_hands_out_the_rest(queue, payload):
    queue.put(make_call(0))
    store_raw(queue, payload)
    queue.put(make_call(1))

    taken = queue.take("a", 10, 0)
    assert [d.call.call_id for d in taken] == ["call-0", "call-1"]
    assert queue.dead_letters() == 1 and dead_payloads(queue) == [payload], "kept, bytes as stored"
    assert queue.depth() == 2
    assert [d.call.call_id for d in queue.reclaim("b", 0, 10)] == ["call-0", "call-1"], "nothing else is held"


def test_reclaim_moves_an_undecodable_call_to_the_dead_letters_and_hands_out_the_rest(queue):
    store_raw(queue, b"no header line", held_by="dead")
    queue.put(make_call(1))
    queue.take("dead", 1, 0)

    reclaimed = queue.reclaim("b", 0, 10)
    assert [(d.call.call_id, d.attempt) for d in reclaimed] == [("call-1", 2)]
    assert queue.dead_letters() == 1 and dead_payloads(queue) == [b"no header line"]
    assert queue.depth() == 1


def test_a_dead_lettered_call_is_kept_aside_and_never_handed_out_again(queue):
    queue.put(make_call(1))
    queue.put(make_call(2))
    queue.take("a", 1, 0)
    [past] = queue.reclaim("b", 0, 1)
    queue.dead_letter(past, "handed out too often")

    assert queue.depth() == 1 and queue.dead_letters() == 1
    assert dead_payloads(queue) == [make_call(1).to_bytes()]
    assert queue.reclaim("c", 0, 10) == []
    assert [d.call.call_id for d in queue.take("c", 10, 0)] == ["call-2"]
    queue.ack(past)  # a late ack of the dead-lettered delivery is harmless
    assert queue.depth() == 1 and queue.dead_letters() == 1


def test_dead_letter_of_a_stale_delivery_is_ignored(queue):
    queue.put(make_call())
    [stale] = queue.take("a", 1, 0)
    [current] = queue.reclaim("b", 0, 1)
    queue.dead_letter(stale, "stale")
    assert (queue.depth(), queue.dead_letters()) == (1, 0), "the call stays with its current holder"

    queue.release(current, 60)
    queue.dead_letter(current, "released")
    assert (queue.depth(), queue.dead_letters()) == (1, 0), "a released call is no longer held"


def test_depth_counts_waiting_held_and_delayed_calls(queue):
    for n in range(3):
        queue.put(make_call(n))
    delayed, held = queue.take("a", 2, 0)
    queue.release(delayed, 60)
    assert queue.depth() == 3
    queue.ack(held)
    assert queue.depth() == 2


def test_binary_bodies_and_odd_text_survive(queue):
    call = make_call(
        body=bytes(range(256)) * 64 + b"\n\r\n\x00",
        path="/a b/%2F/ü",
        query="x=%00&y=\n",
        headers=[("X-Ünïcode", "välue ☃"), ("X-Dup", "1"), ("X-Dup", "2"), ("X-Empty", "")],
        callback_url=None,
    )
    queue.put(call)
    assert [d.call for d in queue.take("a", 1, 0)] == [call]


def test_concurrent_consumers_never_share_a_call(queue, open_q):
    for n in range(120):
        queue.put(make_call(n))
    consumers = [open_q() for _ in range(6)]
    received: list[list[str]] = [[] for _ in consumers]

    def consume(index: int) -> None:
        while taken := consumers[index].take(f"c{index}", 4, 0):
            for delivery in taken:
                received[index].append(delivery.call.call_id)
                consumers[index].ack(delivery)

    threads = [threading.Thread(target=consume, args=(index,)) for index in range(len(consumers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    everything = [call_id for ids in received for call_id in ids]
    assert sorted(everything) == sorted(f"call-{n}" for n in range(120))
    assert queue.depth() == 0


def test_redis_that_lost_its_data_recreates_the_group(redis_server):
    queue = open_queue(redis_server.url)
    try:
        queue.put(make_call(1))
        with redis.Redis.from_url(redis_server.url) as client:
            client.flushdb()
        queue.put(make_call(2))  # recreates the stream, but not the group
        assert [d.call.call_id for d in queue.take("a", 10, 0)] == ["call-2"]
    finally:
        queue.close()


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
    assert queue.depth() == 1
    queue.close()


WRITER = """
import sys, time
from app.queue import AsyncCall, open_queue
from app.queue import redis as redis_queue
from app.queue.sqlite import SQLiteQueue
queue = open_queue(sys.argv[1])
for n in range(int(sys.argv[2])):
    queue.put(AsyncCall(f"call-{n}", "echo", "openfaas-fn", "POST", "", "", [], bytes([n]) * 1000, None, 0.0))
print("done", flush=True)
time.sleep(60)
"""


def test_sqlite_puts_survive_a_killed_writer(tmp_path):
    url = f"sqlite:///{tmp_path}/queue.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, "50"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "done\n"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()

    queue = open_queue(url)
    assert queue.depth() == 50
    taken = queue.take("a", 100, 0)
    assert [(d.call.call_id, d.call.body) for d in taken] == [(f"call-{n}", bytes([n]) * 1000) for n in range(50)]
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
)


@given(calls)
def test_a_call_survives_encoding(call):
    assert AsyncCall.from_bytes(call.to_bytes()) == call


@pytest.mark.parametrize("data", [b"", b"no header line", b"{}\nbody", b"[1]\n", b'{"call_id": "x"}\n'])
def test_decoding_rejects_what_encoding_never_made(data):
    with pytest.raises(ValueError):
        AsyncCall.from_bytes(data)
