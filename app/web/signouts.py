"""Dashboard sessions ended by signing out, kept until they would have expired anyway.

A session lives in a signed cookie, not on the server: without a record, a copy of the cookie
taken before signing out would still be accepted until it expires. Signing out records the
session's ID here, and every request a session signs in is checked against it
(``app.web.auth``).

The record is kept where the async queue is, so that every gateway process that may serve the
next request sees it: in Redis when the gateways share a Redis queue (gateways on several
nodes), otherwise in a SQLite file in the state folder (the gateway's processes, and gateway
containers sharing the state volume on one node). ``open_sign_outs`` picks one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from typing import Iterator, Protocol
from urllib.parse import urlsplit

import redis

from app.config import Config
from app.errors import BackendUnavailable

_REDIS_PREFIX = "faas-swarm-py:signed-out:"


class SignOuts(Protocol):
    def end(self, session_id: str, until: float) -> None:
        """Record that ``session_id`` ended; forget it after ``until`` (unix time)."""

    def ended(self, session_id: str) -> bool:
        """Whether ``session_id`` was signed out. Raises BackendUnavailable (503) when the record
        cannot be read: a session is never taken as valid for want of an answer."""


class SQLiteSignOuts:
    def __init__(self, path: str):
        self.path = path
        self._table_made = False

    @contextlib.contextmanager
    def _database(self, failure: str) -> Iterator[sqlite3.Connection]:
        """A connection of its own (requests run in several threads), the table made on first
        use; any SQLite error becomes BackendUnavailable saying ``failure``."""
        connection = None
        try:
            connection = sqlite3.connect(self.path, timeout=5.0)
            if not self._table_made:
                connection.execute("CREATE TABLE IF NOT EXISTS ended (id TEXT PRIMARY KEY, until REAL NOT NULL)")
                self._table_made = True
            with connection:  # one transaction, committed on leaving
                yield connection
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"{failure}: {exc}") from None
        finally:
            if connection is not None:
                connection.close()

    def end(self, session_id: str, until: float) -> None:
        with self._database("The dashboard cannot record the sign-out") as database:
            database.execute("DELETE FROM ended WHERE until < ?", (time.time(),))
            database.execute("INSERT OR REPLACE INTO ended VALUES (?, ?)", (session_id, until))

    def ended(self, session_id: str) -> bool:
        with self._database("The dashboard's signed-out sessions cannot be read") as database:
            return database.execute("SELECT 1 FROM ended WHERE id = ?", (session_id,)).fetchone() is not None


class RedisSignOuts:
    def __init__(self, url: str):
        self._redis = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)

    def end(self, session_id: str, until: float) -> None:
        try:
            self._redis.set(_REDIS_PREFIX + session_id, b"1", pxat=int(until * 1000))
        except redis.RedisError as exc:
            raise BackendUnavailable(f"The dashboard cannot record the sign-out: {exc}") from None

    def ended(self, session_id: str) -> bool:
        try:
            return bool(self._redis.exists(_REDIS_PREFIX + session_id))
        except redis.RedisError as exc:
            raise BackendUnavailable(f"The dashboard's signed-out sessions cannot be read: {exc}") from None


def open_sign_outs(config: Config) -> SignOuts:
    """Redis when ``config.async_queue`` is a Redis URL, else ``signed-out.db`` in the state folder."""
    if urlsplit(config.async_queue).scheme in ("redis", "rediss"):
        return RedisSignOuts(config.async_queue)
    return SQLiteSignOuts(os.path.join(config.state_dir, "signed-out.db"))
