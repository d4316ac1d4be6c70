"""Background work in a gateway process: one round, a pause, again, until stopped.

Each background part of a worker process (the autoscaler, the time series, the usage sampler,
the receiver of nginx's call log, the async worker) runs its rounds on a ``BackgroundLoop``: a
daemon thread, which is a greenlet under gunicorn's gevent worker (gevent patches ``threading``
before the application is built, and this module looks its classes up only when a loop is made).

The loop pauses ``interval`` seconds before each round. ``stop`` ends the pause at once, lets
the round in progress finish and waits for it a bounded time; ``wake`` ends the pause early, so
the next round runs now. A round that fails does not end the loop: a GatewayError (Docker away,
a queue down) is logged as a skipped round, without a traceback; anything else, a bug, with its
traceback. A failed round is followed by at least ``RETRY_PAUSE`` seconds, so a fault that fails
each round at once cannot spin.

A ``LeaderLoop`` runs its rounds only in the process that holds a leadership lock (the
autoscaler, the time series). What else differs between the parts stays in their rounds:
blocking on a socket (``unblock`` lets ``stop`` end that wait), taking from a queue. A part whose
pause depends on its state (the usage sampler sleeps until usage is asked for) gives
``interval`` as a function returning the pause, or None for "until woken".
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

from app.errors import GatewayError
from app.runtime.leader import Lock

# The shortest pause after a failed round.
RETRY_PAUSE = 1.0
# How long ``stop`` waits for the round in progress.
STOP_TIMEOUT = 5.0


def run_round(logger: logging.Logger, what: str, action: Callable[[], object]) -> bool:
    """Run one round of a background loop (``what``: "usage sample", ...); return whether it
    completed. A GatewayError (Docker away, a queue down) is logged as a skipped round; anything
    else, a bug, is logged with its traceback. Neither is raised."""
    try:
        action()
        return True
    except GatewayError as exc:
        logger.warning("%s skipped: %s", what, exc.message)
    except Exception:  # a bug must not end the loop, and must be seen
        logger.exception("%s failed", what)
    return False


class BackgroundLoop:
    """Runs ``round`` in a thread named ``name``, after each pause of ``interval`` seconds, from
    ``start`` until ``stop``; failed rounds are logged to ``logger`` as ``what``'s.

    ``interval`` is seconds, or a function giving the next pause (None: until ``wake`` or
    ``stop``). ``unblock``, when given, is called by ``stop`` to end a round that waits on
    something else than the loop (closing the socket it reads); ``finish`` runs in the loop's
    thread after its last round (giving up a lock its rounds held).
    """

    def __init__(
        self,
        name: str,
        round: Callable[[], object],
        *,
        what: str,
        logger: logging.Logger,
        interval: float | Callable[[], float | None] = 0.0,
        unblock: Callable[[], None] | None = None,
        finish: Callable[[], None] | None = None,
    ):
        self.name = name
        self.what = what
        self._round = round
        self._log = logger
        self._interval = interval if callable(interval) else lambda: interval
        self._unblock = unblock
        self._finish = finish
        self._stopping = threading.Event()
        self._woken = threading.Event()  # set by wake and by stop: the pause ends
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """End the loop: at once when it pauses, else once the round in progress returns; wait
        for that up to ``timeout`` seconds. Whether it ended (a round still running is logged)."""
        self._stopping.set()
        self._woken.set()
        if self._unblock is not None:
            self._unblock()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            self._log.warning("%s still runs a round %g s after stop; it ends after that round", self.name, timeout)
            return False
        return True

    def wake(self) -> None:
        """End the current pause, so the next round runs now."""
        self._woken.set()

    @property
    def stopping(self) -> bool:
        """Whether ``stop`` was called."""
        return self._stopping.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` inside a round, less when ``stop`` is called; whether it was."""
        return self._stopping.wait(seconds)

    def _pause(self, seconds: float | None) -> bool:
        self._woken.wait(seconds)
        self._woken.clear()
        return self._stopping.is_set()

    def _run(self) -> None:
        try:
            pause = self._interval()
            while not self._pause(pause):
                completed = run_round(self._log, self.what, self._round)
                pause = self._interval()
                if not completed and pause is not None:
                    pause = max(pause, RETRY_PAUSE)
        finally:
            if self._finish is not None:
                self._finish()


class LeaderLoop(BackgroundLoop):
    """A BackgroundLoop whose rounds run ``round`` only while this process holds ``lock`` (taken
    or renewed at each round, given up after the last); while another process holds it, they
    run ``follow``, which forgets what this process gathered while it led. Each change of
    leadership is logged ("leads" / "no longer leads", with the process ID), which is how a
    person, or the cluster tests, see that one process leads at a time."""

    def __init__(
        self,
        name: str,
        round: Callable[[], object],
        lock: Lock,
        *,
        follow: Callable[[], object],
        what: str,
        logger: logging.Logger,
        interval: float,
    ):
        super().__init__(name, self._lead, what=what, logger=logger, interval=interval, finish=lock.release)
        self._lock = lock
        self._led_round = round
        self._follow = follow
        self._leading = False

    def _lead(self) -> None:
        leading = self._lock.hold()
        if leading != self._leading:
            self._leading = leading
            self._log.info("%s: process %d %s", self.name, os.getpid(), "leads" if leading else "no longer leads")
        if leading:
            self._led_round()
        else:
            self._follow()
