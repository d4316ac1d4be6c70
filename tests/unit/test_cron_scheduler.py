"""The cron scheduler (app.queue.cron): its rounds over an in-memory queue and a list of
functions, on a clock the tests move (the schedules themselves: test_cron.py)."""

from __future__ import annotations

import functools
import logging
import uuid
from datetime import datetime, timezone

import pytest
from prometheus_client import REGISTRY

from app.config import DEFAULT_NAMESPACE
from app.domain.cron import run_due_time, run_id
from app.domain.models import FunctionStatus
from app.domain.retries import RetryPolicy, gateway_policy
from app.errors import BackendUnavailable
from app.queue import FAILED, QUEUED, RUNNING, SUCCEEDED, AsyncCall, CallFilter, CallRecord
from app.queue.cron import CronScheduler
from tests.waiting import wait_for

# 2026-01-01T10:00:00Z: every test's story starts here.
T0 = datetime(2026, 1, 1, 10, tzinfo=timezone.utc).timestamp()
MINUTE = 60.0
EVERY_MINUTE = {"topic": "cron-function", "schedule": "* * * * *"}


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class MemoryQueue:
    """What the scheduler uses of app.queue.Queue (put, get, calls), kept in memory as the
    Protocol says: ``put`` stores an id once, records are listed newest accepted first, a page at
    a time. ``start`` and ``finish`` move a record as a worker would."""

    def __init__(self, clock: Clock):
        self._clock = clock
        self.stored: dict[str, AsyncCall] = {}
        self._records: dict[str, CallRecord] = {}
        self._order: list[str] = []  # put order, which breaks ties between equal accepted times
        self.down = False

    def put(self, call: AsyncCall) -> bool:
        if self.down:
            raise BackendUnavailable("The async queue is unavailable.")
        if call.call_id in self._records:
            return False
        self.stored[call.call_id] = call
        # A record names the function by its bare name, as both backends' records do.
        self._records[call.call_id] = CallRecord(call.call_id, call.name, call.namespace, QUEUED, 0, self._clock())
        self._order.append(call.call_id)
        return True

    def get(self, call_id: str) -> CallRecord | None:
        if self.down:
            raise BackendUnavailable("The async queue is unavailable.")
        return self._records.get(call_id)

    def calls(self, where: CallFilter, limit: int, after: str = "") -> tuple[list[CallRecord], str]:
        if after and not after.startswith("from:"):
            raise ValueError(f"{after!r} is not a cursor of this queue")
        start = int(after[5:]) if after else 0
        newest_first = sorted(self._order, key=lambda call_id: (self._records[call_id].accepted_at, self._order.index(call_id)))
        matching = [
            self._records[call_id]
            for call_id in reversed(newest_first)
            if all(not wanted or getattr(self._records[call_id], name) == wanted
                   for name, wanted in (("function", where.function), ("namespace", where.namespace), ("state", where.state)))
        ]
        end = start + limit
        return matching[start:end], f"from:{end}" if end < len(matching) else ""

    def start(self, call_id: str) -> None:
        self._records[call_id] = _moved(self._records[call_id], state=RUNNING, attempts=1, started_at=self._clock())

    def finish(self, call_id: str, state: str = SUCCEEDED) -> None:
        self._records[call_id] = _moved(self._records[call_id], state=state, finished_at=self._clock())


def _moved(record: CallRecord, **changes) -> CallRecord:
    return CallRecord(**{**record.__dict__, **changes})


class Functions:
    """The functions the scheduler lists, by reference (``name`` or ``name.namespace``)."""

    def __init__(self):
        self.statuses: dict[str, FunctionStatus] = {}

    def deploy(self, reference: str, annotations: dict[str, str], labels: dict[str, str] | None = None,
               created_at: str = "2025-01-01T00:00:00Z") -> None:
        name, _, namespace = reference.partition(".")
        self.statuses[reference] = FunctionStatus(
            name, "img", namespace or DEFAULT_NAMESPACE, 1, 1, labels=labels or {}, annotations=annotations, created_at=created_at
        )

    def list_functions(self, available: bool = True) -> list[FunctionStatus]:
        return list(self.statuses.values())


class AlwaysLead:
    def hold(self) -> bool:
        return True

    def release(self) -> None:
        pass


@pytest.fixture
def clock():
    return Clock(T0 + 30)


@pytest.fixture
def queue(clock):
    return MemoryQueue(clock)


@pytest.fixture
def functions():
    return Functions()


def scheduler_over(functions, queue, clock, catch_up: float = 3600.0) -> CronScheduler:
    return CronScheduler(
        functions, queue, AlwaysLead(), namespace=DEFAULT_NAMESPACE, retry=gateway_policy(4), catch_up=catch_up, clock=clock
    )


def run_rounds(clock: Clock, until: float, *schedulers: CronScheduler) -> None:
    """Rounds a second apart, each scheduler in turn, up to ``until``."""
    while clock.now < until:
        clock.now = min(clock.now + 1.0, until)
        for scheduler in schedulers:
            scheduler.round()


def runs(queue: MemoryQueue, name: str = "nightly", namespace: str = DEFAULT_NAMESPACE) -> list[float]:
    """The due times of the function's runs stored, oldest first, as minutes after T0."""
    return sorted((due - T0) / MINUTE for call_id in queue.stored if (due := run_due_time(call_id, namespace, name)) is not None)


def skipped(reference: str) -> float:
    return REGISTRY.get_sample_value("gateway_cron_runs_skipped_total", {"function_name": reference}) or 0.0


def test_each_due_run_is_put_once_as_an_async_call_of_the_function(functions, queue, clock):
    labels = {"com.openfaas.retry.attempts": "2", "com.openfaas.queue.max_inflight": "1",
              "com.openfaas.cron.concurrency": "allow"}
    functions.deploy("nightly.team-a", EVERY_MINUTE, labels)
    scheduler = scheduler_over(functions, queue, clock)
    run_rounds(clock, T0 + 3 * MINUTE + 0.5, scheduler)
    assert runs(queue, namespace="team-a") == [1, 2, 3]
    call_id = run_id("team-a", "nightly", int(T0 + MINUTE))
    call = queue.stored[call_id]
    assert (call.function, call.namespace, call.method, call.path, call.query, call.body, call.callback_url) == (
        "nightly.team-a", "team-a", "POST", "", "", b"", None
    )
    assert ("X-Call-Id", call_id) in call.headers and ("X-Cron-Schedule", "* * * * *") in call.headers
    assert call.enqueued_at == T0 + MINUTE  # the round when it fell due
    assert call.retry == RetryPolicy(2, frozenset({429, 502, 503, 504}), 0.5, 30.0) and call.max_inflight == 1


def test_a_function_of_the_default_namespace_is_called_by_its_bare_name(functions, queue, clock):
    functions.deploy("nightly", EVERY_MINUTE)
    scheduler = scheduler_over(functions, queue, clock)
    run_rounds(clock, T0 + MINUTE, scheduler)
    [call] = queue.stored.values()
    assert (call.function, call.namespace, call.retry) == ("nightly", DEFAULT_NAMESPACE, None)


def test_a_new_function_gets_no_run_due_before_it_was_first_seen(functions, queue, clock):
    functions.deploy("nightly", {"topic": "cron-function", "schedule": "* * * * *; 0 10 * * *"})
    scheduler = scheduler_over(functions, queue, clock)
    scheduler.round()  # 10:00:30, created a year ago: neither 10:00 nor anything before
    run_rounds(clock, T0 + MINUTE - 1, scheduler)
    assert runs(queue) == []
    run_rounds(clock, T0 + MINUTE, scheduler)
    assert runs(queue) == [1]


def test_two_schedulers_leading_at_once_store_each_run_once(functions, queue, clock):
    functions.deploy("nightly", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"})
    first, second = scheduler_over(functions, queue, clock), scheduler_over(functions, queue, clock)
    puts = []
    put = queue.put
    queue.put = lambda call: puts.append(put(call)) or puts[-1]
    run_rounds(clock, T0 + 5 * MINUTE + 0.5, first, second)
    assert runs(queue) == [1, 2, 3, 4, 5]
    assert puts.count(True) == 5  # the other scheduler's put of the same run stored nothing


def test_a_new_leader_goes_on_where_the_old_one_left_off(functions, queue, clock):
    functions.deploy("nightly", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"})
    old = scheduler_over(functions, queue, clock)
    run_rounds(clock, T0 + 2 * MINUTE + 0.5, old)
    new = scheduler_over(functions, queue, clock)  # the old leader is gone: its lock came free
    puts = []
    put = queue.put
    queue.put = lambda call: puts.append(call.call_id) or put(call)
    run_rounds(clock, T0 + 4 * MINUTE + 0.5, new)
    assert runs(queue) == [1, 2, 3, 4]
    assert [(run_due_time(call_id, DEFAULT_NAMESPACE, "nightly") - T0) / MINUTE for call_id in puts] == [3, 4]


@pytest.mark.parametrize("reference, namespace", [("nightly", DEFAULT_NAMESPACE), ("nightly.team-a", "team-a")])
def test_a_restart_puts_the_runs_missed_since_the_newest_recorded_one(functions, queue, clock, reference, namespace):
    functions.deploy(reference, EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"})
    run_rounds(clock, T0 + 2 * MINUTE + 0.5, scheduler_over(functions, queue, clock))
    # The function's other async calls, newer than its runs, fill the first pages of its records.
    for _ in range(150):
        queue.put(AsyncCall(str(uuid.uuid4()), reference, namespace, "POST", "", "", [], b"", None, clock.now))
    clock.now = T0 + 5 * MINUTE + 10  # down for three minutes
    scheduler_over(functions, queue, clock).round()
    assert runs(queue, namespace=namespace) == [1, 2, 3, 4, 5]


def test_catching_up_reaches_back_no_further_than_the_bound(functions, queue, clock):
    functions.deploy("nightly", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"})
    run_rounds(clock, T0 + MINUTE + 0.5, scheduler_over(functions, queue, clock))
    clock.now = T0 + 3 * 60 * MINUTE + 0.5  # down for three hours
    scheduler_over(functions, queue, clock, catch_up=10 * MINUTE).round()
    assert runs(queue) == [1] + list(range(171, 181))


def test_a_run_due_while_the_previous_still_goes_is_skipped_and_counted(functions, queue, clock):
    functions.deploy("slow", EVERY_MINUTE)
    scheduler = scheduler_over(functions, queue, clock)
    before = skipped("slow")
    run_rounds(clock, T0 + MINUTE + 0.5, scheduler)
    first = run_id(DEFAULT_NAMESPACE, "slow", int(T0 + MINUTE))
    queue.start(first)
    run_rounds(clock, T0 + 3 * MINUTE + 0.5, scheduler)  # 10:02 and 10:03 find it running
    assert runs(queue, "slow") == [1]
    assert skipped("slow") == before + 2
    queue.finish(first, FAILED)
    run_rounds(clock, T0 + 4 * MINUTE + 0.5, scheduler)
    assert runs(queue, "slow") == [1, 4]
    assert skipped("slow") == before + 2


def test_a_run_that_ended_after_the_next_fell_due_still_skips_it_for_a_late_leader(functions, queue, clock):
    functions.deploy("slow", EVERY_MINUTE)
    run_rounds(clock, T0 + MINUTE + 0.5, scheduler_over(functions, queue, clock))
    clock.now = T0 + 2 * MINUTE + 20
    queue.finish(run_id(DEFAULT_NAMESPACE, "slow", int(T0 + MINUTE)))  # 20 s after 10:02 fell due
    before = skipped("slow")
    clock.now = T0 + 3 * MINUTE + 0.5  # a new leader, judging 10:02 late, as the old one would have
    scheduler_over(functions, queue, clock).round()
    assert runs(queue, "slow") == [1, 3]
    assert skipped("slow") == before + 1


def test_after_an_outage_the_first_missed_run_is_put_and_the_others_wait_for_it(functions, queue, clock):
    functions.deploy("slow", EVERY_MINUTE)
    run_rounds(clock, T0 + MINUTE + 0.5, scheduler_over(functions, queue, clock))
    queue.finish(run_id(DEFAULT_NAMESPACE, "slow", int(T0 + MINUTE)))
    before = skipped("slow")
    clock.now = T0 + 5 * MINUTE + 0.5
    scheduler_over(functions, queue, clock).round()
    assert runs(queue, "slow") == [1, 2]
    assert skipped("slow") == before + 3


def test_concurrency_allow_puts_a_run_while_the_previous_still_goes(functions, queue, clock):
    functions.deploy("slow", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"})
    scheduler = scheduler_over(functions, queue, clock)
    before = skipped("slow")
    run_rounds(clock, T0 + MINUTE + 0.5, scheduler)
    queue.start(run_id(DEFAULT_NAMESPACE, "slow", int(T0 + MINUTE)))
    run_rounds(clock, T0 + 3 * MINUTE + 0.5, scheduler)
    assert runs(queue, "slow") == [1, 2, 3]
    assert skipped("slow") == before


def test_a_function_deployed_again_gets_no_run_due_before_it_was_created(functions, queue, clock):
    functions.deploy("nightly", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"})
    run_rounds(clock, T0 + MINUTE + 0.5, scheduler_over(functions, queue, clock))
    # Deleted, and deployed again at 10:04:30 under the same name: the old run's record stays.
    functions.deploy("nightly", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"}, created_at="2026-01-01T10:04:30Z")
    clock.now = T0 + 5 * MINUTE + 0.5
    scheduler_over(functions, queue, clock).round()
    assert runs(queue) == [1, 5]


def test_a_run_id_a_client_chose_for_a_later_time_does_not_hold_the_runs_up(functions, queue, clock):
    functions.deploy("nightly", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"})
    run_rounds(clock, T0 + MINUTE + 0.5, scheduler_over(functions, queue, clock))
    forged = run_id(DEFAULT_NAMESPACE, "nightly", int(T0 + 24 * 60 * MINUTE))
    queue.put(AsyncCall(forged, "nightly", DEFAULT_NAMESPACE, "POST", "", "", [], b"", None, clock.now))
    clock.now = T0 + 3 * MINUTE + 0.5
    scheduler_over(functions, queue, clock).round()
    assert runs(queue) == [1, 2, 3, 24 * 60]


def test_a_function_with_unusable_labels_is_logged_once_and_the_others_go_on(functions, queue, clock, caplog):
    functions.deploy("broken", {"topic": "cron-function", "schedule": "@hourly"})
    functions.deploy("odd", EVERY_MINUTE, {"com.openfaas.retry.attempts": "many"})
    functions.deploy("nightly", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"})
    scheduler = scheduler_over(functions, queue, clock)
    with caplog.at_level(logging.WARNING, logger="app.queue.cron"):
        run_rounds(clock, T0 + 2 * MINUTE + 0.5, scheduler)
    assert runs(queue) == [1, 2] and runs(queue, "odd") == []
    broken, odd = (record.getMessage() for record in caplog.records)  # once each, in 90 rounds
    assert broken.startswith("cron: broken is not scheduled: annotation schedule")
    assert odd.startswith("cron: odd is not scheduled: label com.openfaas.retry.attempts")


def test_runs_the_queue_could_not_take_are_put_in_a_later_round(functions, queue, clock):
    functions.deploy("nightly", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"})
    scheduler = scheduler_over(functions, queue, clock)
    run_rounds(clock, T0 + MINUTE - 1, scheduler)
    queue.down = True
    run_rounds(clock, T0 + 2 * MINUTE + 0.5, scheduler)  # no round fails: each logs and goes on
    queue.down = False
    run_rounds(clock, T0 + 2 * MINUTE + 1.5, scheduler)
    assert runs(queue) == [1, 2]


def test_a_function_removed_and_deployed_again_starts_afresh_in_the_same_leader(functions, queue, clock):
    functions.deploy("nightly", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"})
    scheduler = scheduler_over(functions, queue, clock)
    run_rounds(clock, T0 + MINUTE + 30, scheduler)
    del functions.statuses["nightly"]
    run_rounds(clock, T0 + 3 * MINUTE + 30, scheduler)
    functions.deploy("nightly", EVERY_MINUTE, {"com.openfaas.cron.concurrency": "allow"}, created_at="2026-01-01T10:03:30Z")
    run_rounds(clock, T0 + 4 * MINUTE + 0.5, scheduler)
    assert runs(queue) == [1, 4]


wait_until = functools.partial(wait_for, timeout=5, interval=0.01)


class Lease:
    """A lock the test gives and takes; ``answered`` counts its answers since the last change."""

    def __init__(self):
        self.leading, self.answered = True, 0

    def set(self, leading: bool) -> None:
        self.leading, self.answered = leading, 0

    def hold(self) -> bool:
        self.answered += 1
        return self.leading

    def release(self) -> None:
        pass


def at(minutes: float) -> str:
    """A run of ``slow`` due ``minutes`` after T0."""
    return run_id(DEFAULT_NAMESPACE, "slow", int(T0 + minutes * MINUTE))


def test_a_scheduler_that_leads_again_reads_from_the_queue_where_the_runs_stand(functions, queue, clock):
    functions.deploy("slow", EVERY_MINUTE)
    queue.put(AsyncCall(at(0), "slow", DEFAULT_NAMESPACE, "POST", "", "", [], b"", None, T0))
    queue.finish(at(0))
    clock.now = T0 + MINUTE + 0.5
    lease = Lease()
    first = CronScheduler(functions, queue, lease, namespace=DEFAULT_NAMESPACE, retry=gateway_policy(4), catch_up=3600.0,
                          interval=0.01, clock=clock)
    first.start()
    try:
        wait_until(lambda: runs(queue, "slow") == [0, 1], what="the run due at 10:01")
        lease.set(False)
        wait_until(lambda: lease.answered >= 2, what="a round as a follower")
        queue.finish(at(1))
        # Another gateway leads: 10:02 runs until 10:03:30, so 10:03 is skipped; 10:04 runs.
        second = scheduler_over(functions, queue, clock)
        before = skipped("slow")
        clock.now = T0 + 2 * MINUTE + 0.5
        second.round()
        queue.start(at(2))
        clock.now = T0 + 3 * MINUTE + 0.5
        second.round()
        clock.now = T0 + 3 * MINUTE + 30
        queue.finish(at(2))
        clock.now = T0 + 4 * MINUTE + 0.5
        second.round()
        assert runs(queue, "slow") == [0, 1, 2, 4] and skipped("slow") == before + 1
        lease.set(True)
        wait_until(lambda: lease.answered >= 2, what="a round as the leader again")
    finally:
        first.stop()
    # Leading again, it went on from 10:04 as the queue says, not from 10:01 as it had left off:
    # it did not judge 10:03 a second time.
    assert runs(queue, "slow") == [0, 1, 2, 4] and skipped("slow") == before + 1
