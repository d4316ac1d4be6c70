"""Stored async calls and their records outlive a Redis restart, orderly (SIGTERM) or not (SIGKILL).

The server is a redis-server of the test's own (``tests.queueing.RedisServer``) with an
append-only file fsynced on every write; it is restarted on the same port and folder while the
gateway's queue object stays open, as a gateway's would.
"""

from __future__ import annotations

import signal
import time

import pytest

from app.errors import BackendUnavailable
from app.queue import DEAD, QUEUED, RETRYING, RUNNING, SUCCEEDED, CallResult, Outcome, open_queue
from tests.queueing import RedisServer, make_call

DONE = Outcome(SUCCEEDED, 200, 0.1, None, CallResult(200, [], b"ok", False), True)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_calls_survive_a_redis_restart(tmp_path, stop_signal):
    server = RedisServer(tmp_path).start()
    queue = open_queue(server.url)
    try:
        for n in range(4):
            queue.put(make_call(n))
        [held] = queue.take("gone", 1, 0)
        [delayed] = queue.take("gone", 1, 0)
        queue.release(delayed, 0.1, 503, "status 503")
        [buried] = queue.take("gone", 1, 0)
        queue.dead_letter(buried, "given up")

        server.stop(stop_signal)
        with pytest.raises(BackendUnavailable):
            queue.put(make_call(9))
        server.start()

        assert [queue.get(f"call-{n}").state for n in range(4)] == [RUNNING, RETRYING, DEAD, QUEUED]
        [reclaimed] = queue.reclaim("alive", 0, 10)
        assert (reclaimed.call, reclaimed.attempt) == (held.call, 2)
        # take waits for the released call to come due; the bound only stops a broken queue.
        rest, deadline = [], time.monotonic() + 5
        while len(rest) < 2 and time.monotonic() < deadline:
            rest += queue.take("alive", 10, 1.0)
        assert sorted((d.call.call_id, d.attempt) for d in rest) == [("call-1", 2), ("call-3", 1)]
        for delivery in [reclaimed, *rest]:
            queue.finish(delivery, DONE)
        counts = queue.counts()
        assert [counts[state] for state in (QUEUED, RUNNING, RETRYING, SUCCEEDED, DEAD)] == [0, 0, 0, 3, 1]
    finally:
        queue.close()
        server.stop()
