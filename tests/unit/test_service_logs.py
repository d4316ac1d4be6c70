"""SwarmLogSource (app/runtime/swarm/service_logs.py) against the in-memory Docker Engine of tests.fakedocker.

Docker applies ``tail`` per task and sends a service's tasks one after the other; the source
merges them by time, cuts to the last N, and follows on from there without repeating a line.
Follow streams are read on a thread of their own, as the gateway does, and waited for with a bound.
"""

from __future__ import annotations

import logging
import queue
import threading

import pytest

from app.domain.models import FunctionDeployment, LogRequest
from app.domain.timestamps import format_rfc3339_nano
from app.errors import BackendUnavailable, NotFound
from app.runtime.swarm.service_logs import SwarmLogSource
from tests.fakedocker import LOG_PIECE

WAIT = 5


@pytest.fixture
def source(runtime) -> SwarmLogSource:
    return runtime.logs


@pytest.fixture
def tasks(runtime, engine) -> list[str]:
    """Three running tasks of function echo."""
    runtime.functions.deploy(FunctionDeployment(service="echo", image="docker.io/functions/alpine:latest"))
    runtime.functions.scale("echo", 3)
    return [task["ID"] for task in engine.running_tasks("echo")]


def ask(**extra) -> LogRequest:
    return LogRequest(name="echo", namespace="openfaas-fn", **extra)


def texts(stream) -> list[str]:
    return [message.text for batch in stream for message in batch]


class Reader:
    """Iterates a stream on a thread, as the gateway's response does, collecting its messages."""

    def __init__(self, stream):
        self.stream = stream
        self.messages: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for batch in self.stream:
            for message in batch:
                self.messages.put(message)

    def take(self, count: int) -> list[str]:
        return [self.messages.get(timeout=WAIT).text for _ in range(count)]

    def stop(self) -> None:
        self.stream.close()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the stream did not end when closed"


def test_every_line_of_every_task_with_its_instance_and_time(source, engine, tasks):
    sent = [(task, f"line {n} of {task}", engine.log(task, f"line {n} of {task}")) for n in range(2) for task in tasks]
    engine.log(tasks[0], "oops", stream=2)
    messages = [m for batch in source.open(ask()) for m in batch]
    got = {(m.instance, m.text, m.timestamp) for m in messages}
    assert {(task, text) for task, text, _ in sent} | {(tasks[0], "oops")} == {(i, t) for i, t, _ in got}
    assert all(m.name == "echo" and m.namespace == "openfaas-fn" for m in messages)
    first = next(m for m in messages if m.text == sent[0][1])
    assert first.timestamp == "2026-01-01T00:00:00.001000000Z"


@pytest.mark.parametrize("tail", [1, 2, 4, 8, 9, 50])
def test_tail_is_the_last_lines_of_all_tasks_merged_by_time(source, engine, tasks, tail):
    # Interleaved in time, but Docker sends all of one task's lines before the next task's.
    order = [tasks[n % 3] for n in (0, 1, 2, 2, 0, 1, 1, 0, 2)]
    lines = [f"{n}" for n in range(len(order))]
    for task, text in zip(order, lines):
        engine.log(task, text)
    assert texts(source.open(ask(tail=tail))) == lines[-tail:]


def test_tail_counts_from_since(source, engine, tasks):
    at = [engine.log(tasks[n % 3], f"{n}") for n in range(6)]
    since = format_rfc3339_nano(*divmod(at[3], 10**9))
    assert texts(source.open(ask(since=since, tail=10))) == ["3", "4", "5"]
    assert texts(source.open(ask(since=since))) == ["3", "4", "5"]


def test_tail_then_follow_continues_from_the_boundary_without_repeating(source, engine, tasks):
    engine.log(tasks[0], "a1")
    engine.log(tasks[1], "b1")
    engine.log(tasks[0], "a2")
    reader = Reader(source.open(ask(tail=2, follow=True)))
    try:
        assert reader.take(2) == ["b1", "a2"]
        # The follow request asks since a2's time, which Docker includes: a2 comes again, and
        # must not be passed on a second time.
        engine.wait_for_followers(1)
        engine.log(tasks[1], "b2")
        engine.log(tasks[2], "c1")
        assert reader.take(2) == ["b2", "c1"]
        assert reader.messages.empty()
    finally:
        reader.stop()


def test_follow_without_tail_passes_each_line_as_it_comes(source, engine, tasks):
    engine.log(tasks[0], "before")
    reader = Reader(source.open(ask(follow=True)))
    try:
        assert reader.take(1) == ["before"]
        engine.wait_for_followers(1)
        for n in range(3):
            engine.log(tasks[n], f"live {n}")
            assert reader.take(1) == [f"live {n}"]
    finally:
        reader.stop()


@pytest.mark.parametrize("length", [LOG_PIECE - 1, LOG_PIECE, LOG_PIECE + 1, 2 * LOG_PIECE + 100])
@pytest.mark.parametrize("tail", [None, 10])
def test_lines_docker_splits_at_16_kib_come_out_whole(source, engine, tasks, length, tail):
    long = "".join(chr(ord("a") + n % 26) for n in range(length))
    engine.log(tasks[0], "short one")
    engine.log(tasks[1], long)
    engine.log(tasks[2], "short two")
    assert texts(source.open(ask(tail=tail))) == ["short one", long, "short two"]


def test_one_instance_only(runtime, source, engine, tasks):
    for task in tasks:
        engine.log(task, f"from {task}")
    stream = source.open(ask(instance=tasks[1][:8]))
    assert texts(stream) == [f"from {tasks[1]}"]


@pytest.mark.parametrize(
    "request_, error",
    [
        (LogRequest(name="ghost", namespace="openfaas-fn"), NotFound),
        (LogRequest(name="echo", namespace="openfaas-fn", instance="nosuchtask"), NotFound),
    ],
)
def test_open_refuses_unknown_functions_and_instances(source, tasks, request_, error):
    with pytest.raises(error):
        source.open(request_)


def test_open_without_docker_is_unavailable(source, engine, tasks):
    engine.down = True
    with pytest.raises(BackendUnavailable):
        source.open(ask())


def test_a_function_removed_after_open_is_not_found_when_read(runtime, source, tasks):
    stream = source.open(ask())
    runtime.functions.delete("echo")
    with pytest.raises(NotFound, match="echo"):
        list(stream)


def test_close_ends_a_quiet_follow_from_another_thread_without_a_warning(source, engine, tasks, caplog):
    reader = Reader(source.open(ask(follow=True)))
    engine.wait_for_followers(1)
    with caplog.at_level(logging.WARNING, logger="app.runtime.swarm.service_logs"):
        reader.stop()
    assert caplog.records == []


def test_a_stream_closed_before_it_starts_asks_docker_nothing(source, engine, tasks):
    stream = source.open(ask(follow=True, tail=5))
    stream.close()
    assert texts(stream) == []
    assert engine.count("GET", r"/services/[^/]+/logs") == 0
