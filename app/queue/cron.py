"""The cron scheduler: puts each run of every cron function (``app.domain.cron``) on the async
queue when it falls due, so that a run is an async call like any other: it has a call id and a
record (``GET /system/async-calls?function=NAME`` lists them), and it is retried and dead-lettered
as the function's retry labels and the gateway's settings say (``app.domain.retries``).

Every gateway process starts one, but only the holder of the cron leadership
(``app.runtime.leader.cron_leadership``: a Redis lease every gateway shares when the queue is on
Redis, else the host's file lock) runs rounds, about every second. A round lists the functions
of every namespace and, for each cron function, puts the runs that fell due since the round
before, each under the id ``app.domain.cron.run_id`` gives it. Nothing makes a run go missing or
run twice when the leader restarts or changes:

- Every scheduler gives a run the same id, and ``Queue.put`` stores an id once, so two
  schedulers leading at once (a lease that ran out during a slow round) store each run once.
- A scheduler that starts leading picks each function up where its runs recorded in the queue
  left off: the newest run among the function's newest records (its due time read back from its
  id), and puts the runs due since. A function without a recorded run starts when the scheduler
  first sees it, so a new function, or one that just became a cron function, gets no run due
  before; and a function deployed again under an old name none due before it was created.
- Catching up is bounded: a run due more than ``cron_catch_up`` seconds ago is not put.

A run that falls due while the function's previous run still goes (its record queued, running or
retrying, or finished only after the new run fell due) is skipped, logged and counted in
``gateway_cron_runs_skipped_total``, unless the function's ``com.openfaas.cron.concurrency`` is
``allow``. The rule reads the previous run's record rather than the moment it is applied, so a
scheduler judging a run late (after a leader change, or catching up) decides as one in time
would have; after an outage the first missed run is put and the later ones find it waiting. A
skipped run leaves no record: one judged again (by the next leader, or in the next round after
the queue failed in this one) is counted again.

A function whose cron annotations or retry labels are unusable (deployed before they were
checked) is logged once, and left out until they are fixed; the other functions' runs go on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from app import metrics
from app.background.loop import LeaderLoop
from app.domain.cron import FORBID, CronSpec, cron_spec, due_times, run_due_time, run_id
from app.domain.models import FunctionStatus
from app.domain.names import function_reference
from app.domain.retries import RetryPolicy, call_policy
from app.domain.timestamps import parse_rfc3339
from app.errors import GatewayError
from app.queue import ACTIVE, AsyncCall, CallFilter, Queue
from app.runtime.interfaces import Functions
from app.runtime.leader import Lock

log = logging.getLogger(__name__)

# Seconds between rounds: how late a run may be put after it fell due.
ROUND_SECONDS = 1.0
# Where a newly leading scheduler looks for a function's newest run: its newest records, this
# many pages of this many (a function's other async calls share the listing).
_PAGE = 100
_PAGES = 5


@dataclass
class _Cursor:
    """Where the runs of one cron function stand."""

    after: float  # every run due up to here was put or skipped
    last_run: str | None  # the id of the newest run put, None before the first


class CronScheduler:
    """Puts the due runs of cron functions on ``queue``; ``start`` runs rounds every ``interval``
    seconds in the background, while this process holds ``lock``."""

    def __init__(
        self,
        functions: Functions,
        queue: Queue,
        lock: Lock,
        *,
        namespace: str,
        retry: RetryPolicy,
        catch_up: float,
        interval: float = ROUND_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self.functions = functions
        self.queue = queue
        self.namespace = namespace  # the default one: its functions' runs name them by bare name
        self.retry = retry  # the gateway's policy, for functions that set no retry label
        self.catch_up = catch_up
        self._clock = clock  # wall time: cron expressions are read on a wall clock
        self._cursors: dict[str, _Cursor] = {}
        self._faults: dict[str, str] = {}
        # Another process leading, where the runs stand is read from the queue again on return.
        self._loop = LeaderLoop(
            "cron", self.round, lock, follow=self._cursors.clear, what="cron round", logger=log, interval=interval
        )

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def round(self) -> None:
        """Put every cron function's runs due since the round before."""
        now = self._clock()
        scheduled: set[str] = set()
        faults: dict[str, str] = {}
        for status in self.functions.list_functions(available=False):
            reference = function_reference(status.name, status.namespace, self.namespace)
            try:
                spec = cron_spec(status.annotations, status.labels)
                if spec is None:
                    continue
                retry, max_inflight = call_policy(status.labels, self.retry)
            except ValueError as exc:
                faults[reference] = str(exc)
                if self._faults.get(reference) != faults[reference]:
                    log.warning("cron: %s is not scheduled: %s", reference, exc)
                continue
            scheduled.add(reference)
            try:
                self._schedule(reference, status, spec, retry, max_inflight, now)
            except GatewayError as exc:
                log.warning("cron: could not schedule %s: %s", reference, exc.message)
        self._faults = faults
        for gone in self._cursors.keys() - scheduled:
            del self._cursors[gone]

    def _schedule(
        self, reference: str, status: FunctionStatus, spec: CronSpec, retry: RetryPolicy | None, max_inflight: int, now: float
    ) -> None:
        """Put or skip the runs of one function due up to ``now``. A queue failing half-way leaves
        them all to the next round, where the runs put already are refused as stored."""
        cursor = self._cursors.get(reference)
        if cursor is None:
            cursor = self._cursors[reference] = self._resume(status, now)
        for due in due_times(spec, max(cursor.after, now - self.catch_up), now):
            if spec.concurrency == FORBID and self._still_going(cursor.last_run, due):
                log.info("cron: %s: the run due at %d skipped, run %s still goes", reference, due, cursor.last_run)
                metrics.record_cron_skipped(reference)
            else:
                call_id = run_id(status.namespace, status.name, due)
                # False: another leader stored this run already, which is as good.
                self.queue.put(
                    AsyncCall(
                        call_id=call_id,
                        function=reference,
                        namespace=status.namespace,
                        method="POST",
                        path="",
                        query="",
                        headers=[
                            ("X-Call-Id", call_id),
                            ("X-Start-Time", str(int(now * 1e9))),
                            ("X-Cron-Schedule", spec.schedule),
                        ],
                        body=b"",
                        callback_url=None,
                        enqueued_at=now,
                        retry=retry,
                        max_inflight=max_inflight,
                    )
                )
                cursor.last_run = call_id
        cursor.after = now

    def _resume(self, status: FunctionStatus, now: float) -> _Cursor:
        """Where the function's runs stand according to the queue: after its newest recorded run
        (and not before the function was created), else from ``now``."""
        # Records name a function by its bare name, beside its namespace.
        where = CallFilter(function=status.name, namespace=status.namespace)
        page = ""
        for _ in range(_PAGES):
            records, page = self.queue.calls(where, _PAGE, page)
            # An id of the cron form due later than now was not put by a scheduler: a client
            # chose it, and it must not stop the runs until then.
            runs = [
                (due, record.call_id)
                for record in records
                if (due := run_due_time(record.call_id, status.namespace, status.name)) is not None and due <= now
            ]
            if runs:
                due, call_id = max(runs)
                return _Cursor(after=max(due, _created(status)), last_run=call_id)
            if not page:
                break
        return _Cursor(after=now, last_run=None)

    def _still_going(self, call_id: str | None, due: int) -> bool:
        """Whether run ``call_id`` was still going when a run fell due at ``due``."""
        record = self.queue.get(call_id) if call_id else None
        if record is None:
            return False
        return record.state in ACTIVE or (record.finished_at is not None and record.finished_at > due)


def _created(status: FunctionStatus) -> float:
    """When the function was created (unix seconds), 0 when the runtime does not say."""
    try:
        return float(parse_rfc3339(status.created_at)[0]) if status.created_at else 0.0
    except ValueError:
        return 0.0
