"""The embedded async queue: one SQLite file that every gateway process on the node opens.

One row per stored call. ``consumer`` and ``claimed_at`` say who holds it since when (NULL while
it waits), ``attempts`` counts hand-outs and ``available_at`` is when it may be handed out (later
than now after a release with a delay). Ack deletes the row; ``AUTOINCREMENT`` keeps a deleted
row's id from coming back, so a late ack can never remove a newer call.

Dead letters are rows of their own table, ``dead_letters``: the payload exactly as it was stored,
the message's id and attempts, the reason and when. A row is moved there in the same transaction
that found it undecodable (while claiming) or that the worker asked to move, so it is always in
exactly one of the two tables.

The file is in WAL mode with ``synchronous=FULL``: put commits and fsyncs before it returns, so an
accepted call survives the process being killed and the machine losing power. Every write is a
``BEGIN IMMEDIATE`` transaction, which takes the file's one write lock at once, so two consumers
never claim the same row. Each process uses one connection behind a lock.

SQLite cannot yield to gevent while it works, so a commit holds up the process's other greenlets
for one fsync; waiting for another process's write lock, on the other hand, is done here with
``time.sleep`` (which gevent makes cooperative) instead of SQLite's busy handler, which would block.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Callable, TypeVar

from app.errors import BackendUnavailable
from app.queue import AsyncCall, Delivery

T = TypeVar("T")

_TABLE = """CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL,
    consumer TEXT,
    claimed_at REAL,
    attempts INTEGER NOT NULL,
    available_at REAL NOT NULL
)"""
_DEAD_TABLE = """CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    dead_at REAL NOT NULL
)"""
# Both statements select the same row: a held message whose attempts match, so a stale delivery's
# request moves nothing.
_BURY = """INSERT INTO dead_letters (message_id, payload, attempts, reason, dead_at)
    SELECT id, payload, attempts, ?, ? FROM messages WHERE id = ? AND attempts = ? AND consumer IS NOT NULL"""
_BURIED = "DELETE FROM messages WHERE id = ? AND attempts = ? AND consumer IS NOT NULL"
_INDEX = "CREATE INDEX IF NOT EXISTS messages_by_state ON messages (consumer, available_at)"
_CLAIM = """UPDATE messages SET consumer = ?, claimed_at = ?, attempts = attempts + 1
    WHERE id IN (SELECT id FROM messages WHERE {where} LIMIT ?)
    RETURNING id, payload, attempts"""
_READY = "consumer IS NULL AND available_at <= ? ORDER BY available_at, id"
_IDLE = "consumer IS NOT NULL AND claimed_at <= ? ORDER BY claimed_at, id"
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
# How long to wait for another process's write lock before calling the queue unavailable.
_LOCK_WAIT_SECONDS = 10.0
_LOCK_RETRY_SECONDS = 0.005
_POLL_SECONDS = 0.05


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
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        except OSError as exc:
            raise BackendUnavailable(f"The async queue file {path} cannot be created: {exc.strerror}.") from None
        self._run(_create_schema)
        # Nothing stays open: each process opens its own connection on first use, which matters
        # when gunicorn forks its workers after building the app.
        self.close()

    def put(self, call: AsyncCall) -> None:
        payload = call.to_bytes()
        self._run(
            lambda db: db.execute(
                "INSERT INTO messages (payload, attempts, available_at) VALUES (?, 0, ?)", (payload, time.time())
            )
        )

    def take(self, consumer: str, count: int, block_seconds: float) -> list[Delivery]:
        # Polling, because SQLite cannot tell another process that a row arrived.
        deadline = time.monotonic() + block_seconds
        while True:
            deliveries = self._take_ready(consumer, count)
            remaining = deadline - time.monotonic()
            if deliveries or remaining <= 0:
                return deliveries
            time.sleep(min(_POLL_SECONDS, remaining))

    def reclaim(self, consumer: str, idle_seconds: float, count: int) -> list[Delivery]:
        now = time.time()
        return self._claim(consumer, _IDLE, now - idle_seconds, count, now)

    def ack(self, delivery: Delivery) -> None:
        self._run(lambda db: db.execute("DELETE FROM messages WHERE id = ?", (int(delivery.message_id),)))

    def release(self, delivery: Delivery, delay_seconds: float) -> None:
        # Matching the attempt count makes a stale delivery's release a no-op: a reclaim since
        # has raised the count.
        self._run(
            lambda db: db.execute(
                "UPDATE messages SET consumer = NULL, claimed_at = NULL, available_at = ?"
                " WHERE id = ? AND attempts = ? AND consumer IS NOT NULL",
                (time.time() + delay_seconds, int(delivery.message_id), delivery.attempt),
            )
        )

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self._run(lambda db: _bury(db, int(delivery.message_id), delivery.attempt, reason))

    def depth(self) -> int:
        return self._run(lambda db: db.execute("SELECT COUNT(*) FROM messages").fetchone()[0], write=False)

    def dead_letters(self) -> int:
        return self._run(lambda db: db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0], write=False)

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    def _take_ready(self, consumer: str, count: int) -> list[Delivery]:
        now = time.time()
        # A read first: it needs no write lock, so idle polling never holds up a put.
        ready = self._run(
            lambda db: db.execute("SELECT 1 FROM messages WHERE " + _READY + " LIMIT 1", (now,)).fetchone(),
            write=False,
        )
        return self._claim(consumer, _READY, now, count, now) if ready else []

    def _claim(self, consumer: str, where: str, bound: float, count: int, now: float) -> list[Delivery]:
        def claim(db: sqlite3.Connection) -> list[Delivery]:
            rows = db.execute(_CLAIM.format(where=where), (consumer, now, bound, count)).fetchall()
            deliveries = []
            # One row at a time, in the claim's own transaction: a row that cannot be decoded
            # leaves the queue for good, and the others are handed out all the same.
            for row_id, payload, attempts in sorted(rows):
                try:
                    deliveries.append(Delivery(str(row_id), AsyncCall.from_bytes(payload), attempts))
                except ValueError as exc:
                    _bury(db, row_id, attempts, str(exc))
            return deliveries

        return self._run(claim)

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
    db.execute(_TABLE)
    db.execute(_INDEX)
    db.execute(_DEAD_TABLE)


def _bury(db: sqlite3.Connection, row_id: int, attempts: int, reason: str) -> None:
    """Move the held row ``row_id`` whose attempts are ``attempts`` to the dead letters."""
    db.execute(_BURY, (reason, time.time(), row_id, attempts))
    db.execute(_BURIED, (row_id, attempts))
