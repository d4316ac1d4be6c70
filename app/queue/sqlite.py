"""The embedded async queue: one SQLite file that every gateway process on the node opens.

Two tables. ``calls`` holds one row per call record, with the request as stored (``payload``,
``AsyncCall.to_bytes``) so that a finished call can be replayed; ``seq`` orders records by
acceptance for listing. ``queue`` holds one row per call still to hand out: ``consumer`` and
``claimed_at`` say who holds it since when (NULL while it waits), ``attempts`` counts hand-outs,
``available_at`` is when it may be handed out (later than now after a release with a delay), and
``cancelled`` marks a cancelled call kept only for its callback to be told. Every operation is one
transaction over both, so a call's record and its place in the queue never disagree.
``AUTOINCREMENT`` keeps a finished row's id from coming back, so a late finish can never touch a
newer hand-out.

A file written by an earlier version (table ``messages``, and ``dead_letters``) is moved into the
two tables the first time it is opened, in one transaction: its waiting and held calls queued
again, its dead letters DEAD, and bytes that cannot be decoded kept as DEAD records too.

The file is in WAL mode with ``synchronous=FULL``: put commits and fsyncs before it returns, so an
accepted call survives the process being killed and the machine losing power. Every write is a
``BEGIN IMMEDIATE`` transaction, which takes the file's one write lock at once, so two consumers
never claim the same row. Each process uses one connection behind a lock.

SQLite cannot yield to gevent while it works, so a commit holds up the process's other greenlets
for one fsync; waiting for another process's write lock, on the other hand, is done here with
``time.sleep`` (which gevent makes cooperative) instead of SQLite's busy handler, which would block.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import asdict
from typing import Callable, TypeVar

from app.errors import BackendUnavailable
from app.queue import (
    CANCELLED,
    DEAD,
    FINISHED,
    QUEUED,
    RETRYING,
    RUNNING,
    STATES,
    WAITING,
    AsyncCall,
    CallFilter,
    CallRecord,
    CallResult,
    Delivery,
    Outcome,
    Run,
)

T = TypeVar("T")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS calls (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id TEXT NOT NULL UNIQUE,
        function TEXT NOT NULL,
        namespace TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        accepted_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        status_code INTEGER,
        duration_seconds REAL,
        error TEXT,
        has_callback INTEGER NOT NULL,
        callback_delivered INTEGER,
        result_status INTEGER,
        result_headers TEXT,
        result_body BLOB,
        result_truncated INTEGER,
        history TEXT NOT NULL DEFAULT '[]',
        reference TEXT NOT NULL,
        max_inflight INTEGER NOT NULL DEFAULT 0,
        payload BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS calls_by_function ON calls (function, namespace, seq)",
    "CREATE INDEX IF NOT EXISTS calls_by_state ON calls (state, seq)",
    "CREATE INDEX IF NOT EXISTS calls_by_finish ON calls (finished_at)",
    """CREATE TABLE IF NOT EXISTS queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id TEXT NOT NULL UNIQUE,
        reference TEXT NOT NULL,
        max_inflight INTEGER NOT NULL,
        consumer TEXT,
        claimed_at REAL,
        attempts INTEGER NOT NULL,
        available_at REAL NOT NULL,
        cancelled INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS queue_by_state ON queue (consumer, available_at)",
    "CREATE INDEX IF NOT EXISTS queue_due ON queue (reference, consumer, available_at, id)",
    # The functions with calls in the queue, and when each was last served (0: not since it came
    # to have calls), in take order: the least recently served goes first.
    "CREATE TABLE IF NOT EXISTS turns (reference TEXT PRIMARY KEY, served INTEGER NOT NULL)",
)
# A function's due calls, oldest first, with each one's cap: what a take hands out of it.
_DUE = """SELECT id, max_inflight FROM queue WHERE reference = ? AND consumer IS NULL AND available_at <= ?
    ORDER BY available_at, id LIMIT ?"""
_HELD = "SELECT reference, COUNT(*) FROM queue WHERE consumer IS NOT NULL GROUP BY reference"
_JOIN = "INSERT INTO turns (reference, served) VALUES (?, 0) ON CONFLICT (reference) DO NOTHING"
_SERVED = "UPDATE turns SET served = (SELECT MAX(served) FROM turns) + 1 WHERE reference = ?"
_IDLE = "SELECT id FROM queue WHERE consumer IS NOT NULL AND claimed_at <= ? ORDER BY claimed_at, id LIMIT ?"
_CLAIM = """UPDATE queue SET consumer = ?, claimed_at = ?, attempts = attempts + 1 WHERE id = ?
    RETURNING id, call_id, attempts, cancelled"""
# A delivery is current while its row is held with the attempts it was handed out with.
_CURRENT = "id = ? AND attempts = ? AND consumer IS NOT NULL"
_RECORD = """call_id, function, namespace, state, attempts, accepted_at, started_at, finished_at,
    status_code, duration_seconds, error, has_callback, callback_delivered, history"""
_RESULT = "result_status, result_headers, result_body, result_truncated"
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
# How long to wait for another process's write lock before calling the queue unavailable.
_LOCK_WAIT_SECONDS = 10.0
_LOCK_RETRY_SECONDS = 0.005
# Polling: the pause after a look that found nothing, doubling while nothing comes up to
# _IDLE_POLL_SECONDS (every worker process polls: an idle gateway asked its queue forty times a
# second); back to _POLL_SECONDS once a call is found or put here.
_POLL_SECONDS = 0.05
_IDLE_POLL_SECONDS = 0.4
_EXPIRE_BATCH = 1000


class SQLiteQueue:
    """The Queue protocol (``app.queue.Queue``) on one SQLite file; see the module docstring."""

    def __init__(self, path: str):
        """Open (creating it and its folder if missing) the queue file at ``path``.

        Raises BackendUnavailable naming the file when it cannot be opened or written.
        """
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._poll = _POLL_SECONDS
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        except OSError as exc:
            raise BackendUnavailable(f"The async queue file {path} cannot be created: {exc.strerror}.") from None
        self._run(_create_schema)
        # Nothing stays open: each process opens its own connection on first use, which matters
        # when gunicorn forks its workers after building the app.
        self.close()

    def put(self, call: AsyncCall) -> bool:
        self._poll = _POLL_SECONDS
        return self._run(lambda db: _insert(db, call, call.to_bytes(), QUEUED, 0, None))

    def take(self, consumer: str, count: int, block_seconds: float) -> list[Delivery]:
        # Polling, because SQLite cannot tell another process that a row arrived.
        deadline = time.monotonic() + block_seconds
        while True:
            deliveries = self._take_ready(consumer, count)
            if deliveries:
                self._poll = _POLL_SECONDS
                return deliveries
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return deliveries
            time.sleep(min(self._poll, remaining))
            self._poll = min(2 * self._poll, _IDLE_POLL_SECONDS)

    def reclaim(self, consumer: str, idle_seconds: float, count: int) -> list[Delivery]:
        now = time.time()

        def reclaim(db: sqlite3.Connection) -> list[Delivery]:
            idle = [row_id for (row_id,) in db.execute(_IDLE, (now - idle_seconds, count))]
            return _claim(db, consumer, idle, now)

        return self._run(reclaim)

    def finish(self, delivery: Delivery, outcome: Outcome) -> None:
        def finish(db: sqlite3.Connection) -> None:
            if not _leave_queue(db, delivery):
                return
            result = outcome.result
            if outcome.state == CANCELLED:
                # Cancelled while it waited: its record is final, only the callback is news.
                db.execute("UPDATE calls SET callback_delivered = ? WHERE call_id = ?",
                           (outcome.callback_delivered, delivery.call.call_id))
                return
            db.execute(
                f"""UPDATE calls SET state = ?, finished_at = ?, status_code = ?, duration_seconds = ?, error = ?,
                    callback_delivered = ?, {_RESULT.replace(",", " = ?,")} = ? WHERE call_id = ?""",
                (outcome.state, time.time(), outcome.status_code, outcome.duration_seconds, outcome.error,
                 outcome.callback_delivered, result and result.status_code,
                 result and json.dumps(result.headers), result and result.body, result and result.truncated,
                 delivery.call.call_id),
            )

        self._run(finish)

    def release(self, delivery: Delivery, delay_seconds: float, status_code: int | None, error: str | None) -> None:
        def release(db: sqlite3.Connection) -> None:
            released = db.execute(
                f"UPDATE queue SET consumer = NULL, claimed_at = NULL, available_at = ? WHERE {_CURRENT}",
                (time.time() + delay_seconds, int(delivery.message_id), delivery.attempt),
            ).rowcount
            if released:
                db.execute("UPDATE calls SET state = ?, status_code = ?, error = ? WHERE call_id = ? AND state = ?",
                           (RETRYING, status_code, error, delivery.call.call_id, RUNNING))

        self._run(release)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        def bury(db: sqlite3.Connection) -> None:
            if _leave_queue(db, delivery):
                _mark_dead(db, delivery.call.call_id, reason)

        self._run(bury)

    def cancel(self, call_id: str) -> tuple[CallRecord | None, bool]:
        def cancel(db: sqlite3.Connection) -> tuple[CallRecord | None, bool]:
            record = _record(db, call_id)
            if record is None or record.state not in WAITING:
                return record, False
            if record.has_callback:
                # Handed out once more, now, so that the callback hears of it.
                db.execute("UPDATE queue SET cancelled = 1, available_at = ? WHERE call_id = ?", (time.time(), call_id))
            else:
                db.execute("DELETE FROM queue WHERE call_id = ?", (call_id,))
            db.execute("UPDATE calls SET state = ?, finished_at = ? WHERE call_id = ?", (CANCELLED, time.time(), call_id))
            return _record(db, call_id), True

        return self._run(cancel)

    def replay(self, call_id: str) -> tuple[CallRecord | None, bool]:
        def replay(db: sqlite3.Connection) -> tuple[CallRecord | None, bool]:
            record = _record(db, call_id)
            if record is None or record.state not in FINISHED:
                return record, False
            run = Run(record.state, record.attempts, record.started_at, record.finished_at, record.status_code,
                      record.error)
            history = json.dumps([asdict(past) for past in (*record.history, run)])
            db.execute(
                f"""UPDATE calls SET state = ?, attempts = 0, started_at = NULL, finished_at = NULL, status_code = NULL,
                    duration_seconds = NULL, error = NULL, callback_delivered = NULL, history = ?,
                    {_RESULT.replace(",", " = NULL,")} = NULL WHERE call_id = ?""",
                (QUEUED, history, call_id),
            )
            # A cancelled call whose callback was not told yet still has its row: it runs now.
            db.execute("DELETE FROM queue WHERE call_id = ?", (call_id,))
            db.execute(
                """INSERT INTO queue (call_id, reference, max_inflight, attempts, available_at)
                   SELECT call_id, reference, max_inflight, 0, ? FROM calls WHERE call_id = ?""",
                (time.time(), call_id),
            )
            db.execute(_JOIN, (db.execute("SELECT reference FROM calls WHERE call_id = ?", (call_id,)).fetchone()[0],))
            return _record(db, call_id), True

        return self._run(replay)

    def get(self, call_id: str) -> CallRecord | None:
        return self._run(lambda db: _record(db, call_id), write=False)

    def calls(self, where: CallFilter, limit: int, after: str = "") -> tuple[list[CallRecord], str]:
        if after and not after.isdigit():
            raise ValueError(f"{after!r} is not a cursor this queue gave")
        clauses, values = ["seq < ?"], [int(after) if after else 2**63 - 1]
        for column, value in (("function", where.function), ("namespace", where.namespace), ("state", where.state)):
            if value:
                clauses.append(f"{column} = ?")
                values.append(value)
        query = f"SELECT seq, {_RECORD} FROM calls WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?"
        rows = self._run(lambda db: db.execute(query, (*values, limit + 1)).fetchall(), write=False)
        page = rows[:limit]
        cursor = str(page[-1][0]) if len(rows) > limit else ""
        return [_from_row(row[1:]) for row in page], cursor

    def expire(self, finished_before: float) -> int:
        # In batches, each its own transaction: a day's records are not removed under one lock.
        query = f"""DELETE FROM calls WHERE seq IN (
            SELECT seq FROM calls WHERE finished_at < ? AND state IN ({",".join("?" * len(FINISHED))})
            AND call_id NOT IN (SELECT call_id FROM queue) LIMIT {_EXPIRE_BATCH})"""
        removed = 0
        while True:
            batch = self._run(lambda db: db.execute(query, (finished_before, *sorted(FINISHED))).rowcount)
            removed += batch
            if batch < _EXPIRE_BATCH:
                return removed

    def counts(self) -> dict[str, int]:
        rows = self._run(lambda db: db.execute("SELECT state, COUNT(*) FROM calls GROUP BY state").fetchall(), write=False)
        return {**dict.fromkeys(STATES, 0), **dict(rows)}

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    def _take_ready(self, consumer: str, count: int) -> list[Delivery]:
        now = time.time()
        # A read first: it needs no write lock, so idle polling never holds up a put.
        ready = self._run(
            lambda db: db.execute(
                "SELECT 1 FROM queue WHERE consumer IS NULL AND available_at <= ? LIMIT 1", (now,)
            ).fetchone(),
            write=False,
        )
        if not ready:
            return []
        return self._run(lambda db: _claim(db, consumer, _fair(db, now, count), now))

    def _run(self, work: Callable[[sqlite3.Connection], T], write: bool = True) -> T:
        """``work(connection)`` in one transaction, retried while another process holds the lock.

        Raises BackendUnavailable naming the file when SQLite fails or the lock stays taken.
        """
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        with self._lock:
            while True:
                try:
                    db = self._connection()
                    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    try:
                        result = work(db)
                        db.execute("COMMIT")
                        return result
                    finally:
                        if db.in_transaction:
                            db.execute("ROLLBACK")
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF not in _BUSY or time.monotonic() > deadline:
                        raise BackendUnavailable(f"The async queue file {self.path} is unusable: {exc}.") from None
                except sqlite3.DatabaseError as exc:
                    raise BackendUnavailable(f"The async queue file {self.path} is unusable: {exc}.") from None
                time.sleep(_LOCK_RETRY_SECONDS)

    def _connection(self) -> sqlite3.Connection:
        # SQLite forbids using a connection across a fork, so a forked process opens its own.
        if self._db is None or self._pid != os.getpid():
            # No busy handler (timeout=0): _run waits for locks itself, cooperatively.
            db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error:
                db.close()
                raise
            self._db, self._pid = db, os.getpid()
        return self._db


def _create_schema(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        db.execute(statement)
    # Every function with calls in the queue has a turn, whichever version queued them ("WHERE
    # true": SQLite needs a WHERE before an upsert's ON CONFLICT after a SELECT).
    db.execute("INSERT INTO turns (reference, served) SELECT DISTINCT reference, 0 FROM queue WHERE true"
               " ON CONFLICT (reference) DO NOTHING")
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "messages" in tables:
        _migrate(db, tables)


def _migrate(db: sqlite3.Connection, tables: set[str]) -> None:
    """Move an earlier version's ``messages`` and ``dead_letters`` into the records, in the
    schema's own transaction: waiting and held calls queued again with their attempts, dead
    letters DEAD with their reason, undecodable bytes DEAD under an id of their own."""
    for row_id, payload, attempts in db.execute("SELECT id, payload, attempts FROM messages ORDER BY id").fetchall():
        _insert_stored(db, f"legacy-{row_id}", payload, QUEUED, attempts, None)
    if "dead_letters" in tables:
        rows = db.execute("SELECT id, payload, attempts, reason FROM dead_letters ORDER BY id").fetchall()
        for row_id, payload, attempts, reason in rows:
            _insert_stored(db, f"legacy-dead-{row_id}", payload, DEAD, attempts, reason)
        db.execute("DROP TABLE dead_letters")
    db.execute("DROP TABLE messages")


def _insert_stored(db: sqlite3.Connection, fallback_id: str, payload: bytes, state: str, attempts: int,
                   error: str | None) -> None:
    try:
        call = AsyncCall.from_bytes(payload)
    except ValueError as exc:
        call = AsyncCall(fallback_id, "", "", "POST", "", "", [], b"", None, time.time())
        state, error = DEAD, f"the stored call cannot be decoded: {exc}"
    _insert(db, call, payload, state, attempts, error)


def _insert(db: sqlite3.Connection, call: AsyncCall, payload: bytes, state: str, attempts: int,
            error: str | None) -> bool:
    """Store ``call`` (as ``payload``) in ``state``, in the queue unless DEAD; False, storing
    nothing, when its id is taken."""
    stored = db.execute(
        """INSERT INTO calls (call_id, function, namespace, state, attempts, accepted_at, error, finished_at,
                              has_callback, reference, max_inflight, payload)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING""",
        (call.call_id, call.name, call.namespace, state, attempts, call.enqueued_at, error,
         time.time() if state == DEAD else None, bool(call.callback_url), call.function, call.max_inflight, payload),
    ).rowcount
    if stored and state != DEAD:
        db.execute(
            "INSERT INTO queue (call_id, reference, max_inflight, attempts, available_at) VALUES (?, ?, ?, ?, ?)",
            (call.call_id, call.function, call.max_inflight, attempts, time.time()),
        )
        db.execute(_JOIN, (call.function,))
    return bool(stored)


def _fair(db: sqlite3.Connection, now: float, count: int) -> list[int]:
    """The ids of up to ``count`` due queue rows in fair order: the oldest due call of each
    function (the least recently served function first, one not served since it came to have
    calls before any, by its oldest call), then the second of each, and so on; never more of a
    function held than the cap its calls carry. One indexed read per function with calls, not a
    scan of every waiting call."""
    held = dict(db.execute(_HELD).fetchall())
    lines = []
    for reference, served in db.execute("SELECT reference, served FROM turns").fetchall():
        due = db.execute(_DUE, (reference, now, count)).fetchall()
        if due:
            lines.append((served, due[0][0], reference, due))
        elif reference not in held and not db.execute("SELECT 1 FROM queue WHERE reference = ?", (reference,)).fetchone():
            db.execute("DELETE FROM turns WHERE reference = ?", (reference,))  # no call left: no turn
    lines.sort()
    chosen: list[int] = []
    for turn in range(count):
        for _, _, reference, due in lines:
            if turn < len(due) and len(chosen) < count:
                row_id, cap = due[turn]
                if cap == 0 or held.get(reference, 0) + turn + 1 <= cap:
                    chosen.append(row_id)
    return chosen


def _claim(db: sqlite3.Connection, consumer: str, chosen: list[int], now: float) -> list[Delivery]:
    """Hold the queue rows ``chosen`` (their ids) for ``consumer``, RUNNING unless cancelled. One
    row at a time, in the claim's own transaction: a row whose call cannot be decoded leaves the
    queue DEAD, and the others are handed out all the same."""
    deliveries = []
    for row_id in chosen:
        _, call_id, attempts, cancelled = db.execute(_CLAIM, (consumer, now, row_id)).fetchone()
        (payload,) = db.execute("SELECT payload FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        try:
            call = AsyncCall.from_bytes(payload)
        except ValueError as exc:
            db.execute("DELETE FROM queue WHERE id = ?", (row_id,))
            _mark_dead(db, call_id, f"the stored call cannot be decoded: {exc}")
            continue
        if not cancelled:
            db.execute(
                "UPDATE calls SET state = ?, attempts = ?, started_at = COALESCE(started_at, ?) WHERE call_id = ?",
                (RUNNING, attempts, now, call_id),
            )
        db.execute(_SERVED, (call.function,))
        deliveries.append(Delivery(str(row_id), call, attempts, bool(cancelled)))
    return deliveries


def _leave_queue(db: sqlite3.Connection, delivery: Delivery) -> bool:
    """Remove the delivery's row if the delivery is current; whether it was."""
    return db.execute(f"DELETE FROM queue WHERE {_CURRENT}", (int(delivery.message_id), delivery.attempt)).rowcount > 0


def _mark_dead(db: sqlite3.Connection, call_id: str, reason: str) -> None:
    db.execute("UPDATE calls SET state = ?, error = ?, finished_at = ? WHERE call_id = ?",
               (DEAD, reason, time.time(), call_id))


def _record(db: sqlite3.Connection, call_id: str) -> CallRecord | None:
    row = db.execute(f"SELECT {_RECORD}, {_RESULT} FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    if row is None:
        return None
    status, headers, body, truncated = row[-4:]
    result = None if status is None else CallResult(status, [tuple(pair) for pair in json.loads(headers)], body,
                                                    bool(truncated))
    return _from_row(row[:-4], result)


def _from_row(row: tuple, result: CallResult | None = None) -> CallRecord:
    *fields, has_callback, delivered, history = row
    return CallRecord(
        *fields,
        has_callback=bool(has_callback),
        callback_delivered=None if delivered is None else bool(delivered),
        result=result,
        history=tuple(Run(**run) for run in json.loads(history)),
    )
