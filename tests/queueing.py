"""Async-queue helpers shared by the unit, integration and end-to-end tests: a redis-server of a
test's own, and calls to store."""

from __future__ import annotations

import pytest

import harness.redis_server
from app.queue import AsyncCall


class RedisServer(harness.redis_server.RedisServer):
    """harness's redis-server of one's own, failing the test in one line (not a traceback) when
    it cannot start: a session fixture reports its failure to every test using it. Nothing is
    skipped."""

    def start(self) -> "RedisServer":
        try:
            return super().start()
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)


def make_call(n: int = 0, body: bytes = b"", **extra) -> AsyncCall:
    values = {
        "call_id": f"call-{n}",
        "function": "echo",
        "namespace": "openfaas-fn",
        "method": "POST",
        "path": "/sub",
        "query": "a=1",
        "headers": [("Content-Type", "text/plain"), ("X-Call-Id", f"call-{n}")],
        "body": body or f"body {n}".encode(),
        "callback_url": "http://callback.example/done",
        "enqueued_at": 1700000000.25 + n,
    }
    return AsyncCall(**{**values, **extra})
