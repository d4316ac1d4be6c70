"""The background loop every background part runs on: rounds after each pause, a prompt stop, a
wake, and failed rounds logged (a GatewayError as a skipped round, a bug with its traceback)
without ending the loop."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

import pytest

from app.background import loop as background
from app.background.loop import BackgroundLoop, LeaderLoop, run_round
from app.errors import BackendUnavailable
from tests.waiting import wait_for

log = logging.getLogger("tests.loop")


class Rounds:
    """A round that notes when it ran and fails as the test tells it."""

    def __init__(self, *failures: BaseException | None):
        self.times: list[float] = []
        self.failures = list(failures)

    def __call__(self) -> None:
        self.times.append(time.monotonic())
        if self.failures:
            failure = self.failures.pop(0)
            if failure is not None:
                raise failure


def made(round, **options) -> BackgroundLoop:
    return BackgroundLoop("test-loop", round, what="test round", logger=log, **options)


def running(round, **options) -> BackgroundLoop:
    loop = made(round, **options)
    loop.start()
    return loop


def rounds_reached(rounds: Rounds, count: int) -> None:
    wait_for(lambda: len(rounds.times) >= count, timeout=5, interval=0.01, what=f"{count} rounds")


def test_rounds_run_in_a_thread_of_the_given_name_each_after_a_pause_of_the_interval():
    rounds = Rounds()
    started = time.monotonic()
    loop = running(rounds, interval=0.05)
    try:
        rounds_reached(rounds, 3)
        assert "test-loop" in [thread.name for thread in threading.enumerate()]
    finally:
        assert loop.stop()
    gaps = [later - earlier for earlier, later in zip([started, *rounds.times], rounds.times)]
    assert min(gaps) >= 0.045  # a timed wait may end a tick early


def test_stop_ends_the_pause_at_once_and_the_thread_with_it():
    rounds = Rounds()
    loop = running(rounds, interval=60)
    started = time.monotonic()
    assert loop.stop()
    assert time.monotonic() - started < 2
    assert rounds.times == []  # the first round comes after the first pause, which stop ended
    assert "test-loop" not in [thread.name for thread in threading.enumerate()]


def test_a_loop_never_started_stops_at_once():
    assert BackgroundLoop("idle", Rounds(), what="idle round", logger=log, interval=60).stop()


def test_wake_runs_the_next_round_now_and_ends_that_one_pause_only():
    rounds = Rounds()
    loop = running(rounds, interval=lambda: 0.2 if rounds.times else 60)
    try:
        loop.wake()
        rounds_reached(rounds, 2)  # the first at once, though its pause was a minute
    finally:
        assert loop.stop()
    assert rounds.times[1] - rounds.times[0] >= 0.19


def test_an_interval_function_gives_each_pause_and_none_pauses_until_woken():
    pauses = [0.01, None]
    rounds = Rounds()
    loop = running(rounds, interval=lambda: pauses[min(len(rounds.times), 1)])
    try:
        rounds_reached(rounds, 1)  # after 0.01 s
        loop.wake()  # the pause after it has no end of its own
        rounds_reached(rounds, 2)
    finally:
        assert loop.stop()


def first_round_failing(error: Exception, retry_pause: float, monkeypatch, caplog) -> tuple[Rounds, logging.LogRecord]:
    """The rounds of a loop whose first round raises ``error``, and the one line it logged."""
    monkeypatch.setattr(background, "RETRY_PAUSE", retry_pause)
    rounds = Rounds(error)
    loop = running(rounds, interval=0.01)
    try:
        rounds_reached(rounds, 2)
    finally:
        assert loop.stop()
    [record] = [record for record in caplog.records if record.name == "tests.loop"]
    return rounds, record


def test_a_failing_round_is_logged_with_its_traceback_and_the_loop_goes_on(caplog, monkeypatch):
    rounds, failed = first_round_failing(RuntimeError("a bug"), 0.2, monkeypatch, caplog)
    assert (failed.levelno, failed.getMessage()) == (logging.ERROR, "test round failed")
    assert failed.exc_info and "RuntimeError: a bug" in caplog.text
    # The round after a failed one waits RETRY_PAUSE, not the interval: a fault cannot spin.
    assert rounds.times[1] - rounds.times[0] >= 0.19


def test_a_gateway_error_skips_the_round_with_a_warning_and_no_traceback(caplog, monkeypatch):
    _, skipped = first_round_failing(BackendUnavailable("Docker is unreachable"), 0.01, monkeypatch, caplog)
    assert (skipped.levelno, skipped.getMessage()) == (logging.WARNING, "test round skipped: Docker is unreachable")
    assert not skipped.exc_info


def test_run_round_says_whether_the_round_completed(caplog):
    assert run_round(log, "one round", lambda: None)
    assert not run_round(log, "one round", Rounds(BackendUnavailable("away")))
    assert not run_round(log, "one round", Rounds(KeyError("x")))
    assert [record.getMessage() for record in caplog.records] == ["one round skipped: away", "one round failed"]


class Stuck:
    """A round that waits on ``wait`` (by default until ``released``, at most a minute) and
    keeps what it returned."""

    def __init__(self, wait: Callable[[], object] | None = None):
        self.entered, self.released = threading.Event(), threading.Event()
        self.wait = wait or (lambda: self.released.wait(60))
        self.returned: list[object] = []

    def __call__(self) -> None:
        self.entered.set()
        self.returned.append(self.wait())


def stopped_promptly(loop: BackgroundLoop, stuck: Stuck) -> None:
    loop.start()
    assert stuck.entered.wait(5)
    started = time.monotonic()
    assert loop.stop()
    assert time.monotonic() - started < 2


def test_unblock_ends_a_round_waiting_elsewhere_once_the_loop_is_stopping():
    stuck, seen_stopping = Stuck(), []

    def unblock() -> None:
        seen_stopping.append(loop.stopping)
        stuck.released.set()

    loop = made(stuck, unblock=unblock)
    stopped_promptly(loop, stuck)
    assert seen_stopping == [True]


def test_sleep_inside_a_round_ends_when_the_loop_stops():
    stuck = Stuck(lambda: loop.sleep(60))
    loop = made(stuck)
    stopped_promptly(loop, stuck)
    assert stuck.returned == [True]


def test_finish_runs_once_in_the_loop_s_thread_after_its_last_round():
    finished: list[str] = []
    rounds = Rounds()
    loop = running(rounds, interval=0.01, finish=lambda: finished.append(threading.current_thread().name))
    rounds_reached(rounds, 1)
    assert finished == []
    assert loop.stop()
    assert finished == ["test-loop"]


def test_stop_waits_a_bounded_time_for_a_round_that_does_not_end_and_says_so(caplog):
    stuck = Stuck()
    loop = running(stuck)
    assert stuck.entered.wait(5)
    try:
        assert not loop.stop(timeout=0.05)
        assert "test-loop still runs a round 0.05 s after stop" in caplog.text
    finally:
        stuck.released.set()
    wait_for(lambda: "test-loop" not in [t.name for t in threading.enumerate()], timeout=5, interval=0.01,
             what="the loop to end after its round")


class Lease:
    """A leadership lock the test hands out and takes back."""

    def __init__(self):
        self.held = False
        self.released = 0

    def hold(self) -> bool:
        return self.held

    def release(self) -> None:
        self.released += 1


def test_a_leader_loop_runs_its_round_while_it_holds_the_lock_follows_otherwise_and_releases_it_at_the_end():
    lease, led, followed = Lease(), Rounds(), Rounds()
    loop = LeaderLoop("test-loop", led, lease, follow=followed, what="test round", logger=log, interval=0.01)
    loop.start()
    try:
        rounds_reached(followed, 2)
        assert led.times == []
        lease.held = True
        rounds_reached(led, 2)
        assert lease.released == 0
    finally:
        assert loop.stop()
    assert lease.released == 1


def test_a_leader_loop_logs_each_change_of_leadership_once(caplog):
    lease, led, followed = Lease(), Rounds(), Rounds()
    loop = LeaderLoop("test-loop", led, lease, follow=followed, what="test round", logger=log, interval=0.01)
    caplog.set_level(logging.INFO, logger=log.name)
    loop.start()
    try:
        lease.held = True
        rounds_reached(led, 3)
        lease.held = False
        rounds_reached(followed, 3)
    finally:
        assert loop.stop()
    said = [record.getMessage() for record in caplog.records if "leads" in record.getMessage()]
    assert said == [f"test-loop: process {os.getpid()} leads", f"test-loop: process {os.getpid()} no longer leads"]


@pytest.fixture(autouse=True)
def _no_loop_left():
    yield
    assert "test-loop" not in [thread.name for thread in threading.enumerate() if thread.is_alive()]
