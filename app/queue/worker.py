"""The worker behind /async-function: take stored calls, invoke, post the result back.

At least once: a call is acknowledged only after the function answered (or failed for good) and
the callback was delivered (or failed for good), so a worker that dies mid-way leaves it stored,
and another worker reclaims it after ``claim_timeout``.

Each hand-out of a call is one try (``Delivery.attempt``). A failure that may pass (connection
error, 429, 502, 503, 504) before the last try releases the call back to the queue with an
exponential backoff, so the wait holds no slot, any worker may take the retry, and a restart loses
none. The last try's outcome, whatever it is, goes to the callback: the callback gets exactly one
final outcome. A call handed out more than ``max_attempts`` times without an outcome (its workers
died on it, or could not reach the queue to finish it) is moved to the queue's dead letters,
logged, and gets no callback. A callback that keeps failing is retried here with backoff, then
logged and counted as failed, never dropped silently.

Concurrency is bounded in total and per function. Threads here are greenlets under gunicorn's
gevent worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import urllib3

from app import metrics
from app.background.loop import BackgroundLoop
from app.config import Config
from app.dataplane.forwarder import Call, Forwarder, end_to_end
from app.errors import GatewayError
from app.queue import AsyncCall, Delivery, Queue

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs of the configuration; build it with ``from_config``."""

    concurrency: int
    per_function: int
    max_attempts: int
    claim_timeout: float
    # Not configurable: the first retry's delay (doubled for each later one), and how long a
    # callback POST may take.
    backoff: float = 0.5
    callback_timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Config) -> "WorkerSettings":
        return cls(
            concurrency=config.async_concurrency,
            per_function=config.async_function_concurrency,
            max_attempts=config.async_max_attempts,
            claim_timeout=config.async_claim_timeout,
        )


@dataclass(frozen=True)
class Outcome:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float


def _proxy_call(call: AsyncCall) -> Call:
    """The stored request as the proxy sends it, with the body's length now known."""
    headers = [(name, value) for name, value in call.headers if name.lower() != "content-length"]
    if call.body:
        headers.append(("Content-Length", str(len(call.body))))
    start = next((value for name, value in headers if name.lower() == "x-start-time"), "")
    return Call(call.function, call.method, call.path, call.query, headers, call.call_id, start)


def redacted(url: str) -> str:
    """``url`` without the user and password it may carry, fit for a log line."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparseable URL)"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def _backoff(settings: WorkerSettings, attempt: int) -> float:
    return min(settings.backoff * 2 ** (attempt - 1), 30.0)


class AsyncWorker:
    """Consumes a Queue with bounded concurrency; ``start`` once per process, ``stop`` to end."""

    def __init__(self, queue: Queue, forwarder: Forwarder, settings: WorkerSettings):
        self.queue = queue
        self.forwarder = forwarder
        self.settings = settings
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._per_function: dict[str, threading.BoundedSemaphore] = {}
        self._http = urllib3.PoolManager(retries=False, timeout=settings.callback_timeout)
        self._last_reclaim = 0.0
        # No pause between rounds: each waits for calls in the queue's take.
        self._loop = BackgroundLoop("async-worker", self._take, what="async worker round", logger=log)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _take(self) -> None:
        """One round of the loop: take the calls that are due (waiting up to a second for one),
        and reclaim abandoned ones now and then; run each in a thread of its own."""
        try:
            deliveries = []
            if time.monotonic() - self._last_reclaim > min(30.0, self.settings.claim_timeout / 2):
                deliveries = self.queue.reclaim(self.consumer, self.settings.claim_timeout, self.settings.concurrency)
                self._last_reclaim = time.monotonic()
                if deliveries:
                    log.info("async calls taken over from a worker gone quiet: %s",
                             ", ".join(delivery.call.call_id for delivery in deliveries))
            deliveries += self.queue.take(self.consumer, self.settings.concurrency, 1.0)
            metrics.set_queue_depth(self.queue.depth())
            metrics.set_dead_letters(self.queue.dead_letters())
        except GatewayError as exc:
            log.warning("async queue unavailable: %s", exc.message)
            self._loop.sleep(1.0)
            return
        for delivery in deliveries:
            self._slots.acquire()
            threading.Thread(target=self._handle, args=(delivery,), daemon=True).start()

    def _handle(self, delivery: Delivery) -> None:
        call = delivery.call
        try:
            if delivery.attempt > self.settings.max_attempts:
                self._give_up(delivery)
                return
            gate = self._per_function.setdefault(call.function, threading.BoundedSemaphore(self.settings.per_function))
            with gate:
                outcome = self._invoke(call)
                if outcome.status in RETRY_STATUSES and delivery.attempt < self.settings.max_attempts:
                    log.info("async call %s to %s got %s; retry %d", call.call_id, call.function, outcome.status,
                             delivery.attempt)
                    self.queue.release(delivery, _backoff(self.settings, delivery.attempt))
                    return
                self._callback(call, outcome)
            self.queue.ack(delivery)
        except GatewayError as exc:
            # The queue itself failed; the call stays stored and is reclaimed later.
            log.warning("async call %s left for a retry: %s", call.call_id, exc.message)
        finally:
            self._slots.release()

    def _give_up(self, delivery: Delivery) -> None:
        # More hand-outs than tries means earlier ones ended without an outcome: invoking it yet
        # again could kill yet another worker, so it is kept aside instead.
        reason = f"handed out {delivery.attempt} times, more than async_max_attempts ({self.settings.max_attempts})"
        self.queue.dead_letter(delivery, reason)
        log.error("async call %s to %s moved to the dead letters: %s", delivery.call.call_id, delivery.call.function,
                  reason)

    def _invoke(self, call: AsyncCall) -> Outcome:
        """Call the function once; a failure is an outcome too."""
        started = time.monotonic()
        try:
            reply = self.forwarder.forward(_proxy_call(call), [call.body] if call.body else None, True)
            outcome = Outcome(reply.status, reply.headers, b"".join(reply.body), time.monotonic() - started)
        except GatewayError as exc:
            outcome = Outcome(exc.status, [], exc.message.encode(), time.monotonic() - started)
        metrics.record_invocation(call.function, outcome.status, outcome.seconds)
        return outcome

    def _callback(self, call: AsyncCall, outcome: Outcome) -> None:
        if not call.callback_url:
            return
        headers = {
            name: value
            for name, value in end_to_end(outcome.headers)
            if name.lower() not in {"content-length", "x-call-id"}
        }
        headers.update(
            {
                "X-Call-Id": call.call_id,
                "X-Function-Name": call.function,
                "X-Function-Status": str(outcome.status),
                "X-Duration-Seconds": f"{outcome.seconds:.6f}",
            }
        )
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                response = self._http.request("POST", call.callback_url, body=outcome.body, headers=headers, redirect=False)
                if response.status < 500 and response.status != 429:
                    return
                problem = f"status {response.status}"
            except urllib3.exceptions.HTTPError as exc:
                problem = str(exc)
            if attempt < self.settings.max_attempts:
                self._loop.sleep(_backoff(self.settings, attempt))
        log.error("callback for async call %s to %s failed after %d attempts: %s",
                  call.call_id, redacted(call.callback_url), self.settings.max_attempts, problem)
        metrics.record_callback_failed(call.function)
