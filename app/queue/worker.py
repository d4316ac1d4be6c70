"""The worker behind /async-function: take stored calls, invoke, post the result back, record it.

At least once: a call is finished in the queue only after the function answered (or failed for
good) and the callback was delivered (or failed for good), so a worker that dies mid-way leaves it
stored, and another worker reclaims it after ``claim_timeout``. Finishing records the outcome and
the answer (its body cut to ``result_max_bytes``) in the call's record, which the queue keeps for
``retention`` after it finished; each worker removes the expired ones now and then.

Each hand-out of a call is one try (``Delivery.attempt``). The call's retry policy (the function's
``com.openfaas.retry.*`` labels as accepted, else the gateway's) says how many tries it gets and
which statuses are worth another one; a try that got such a status before the last releases the
call back to the queue with the policy's exponential wait (or the function's ``Retry-After`` on
429 and 503, up to the policy's longest wait), so the wait holds no slot, any worker may take the
retry, and a restart loses none. The last try's outcome, whatever it is, goes to the callback: the
callback gets exactly one final outcome. A call handed out more than its tries without an outcome
(its workers died on it, or could not reach the queue to finish it) is made DEAD, logged, and gets
no callback. A call cancelled while it waited is handed out once more only to tell its callback
(``X-Call-State: cancelled``, no ``X-Function-Status``). A callback that keeps failing is retried
here with backoff, then logged and counted as failed, never dropped silently.

Concurrency is bounded in total and per function in each process, and per function across
gateways by ``max_inflight`` in the queue's take. Threads here are greenlets under gunicorn's
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
from app.domain.retries import RetryPolicy, gateway_policy, retry_after_seconds
from app.errors import GatewayError
from app.queue import CANCELLED, FAILED, SUCCEEDED, AsyncCall, CallResult, Delivery, Outcome, Queue

log = logging.getLogger(__name__)
# How often a worker refreshes the state gauges, and removes expired records.
_COUNT_EVERY = 5.0
_EXPIRE_EVERY = 60.0


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs of the configuration; build it with ``from_config``."""

    concurrency: int
    per_function: int
    retry: RetryPolicy  # for calls to functions that set no retry label
    claim_timeout: float
    result_max_bytes: int = 64 * 1024
    retention: float = 24 * 3600.0
    callback_timeout: float = 10.0  # not configurable: how long a callback POST may take

    @classmethod
    def from_config(cls, config: Config) -> "WorkerSettings":
        return cls(
            concurrency=config.async_concurrency,
            per_function=config.async_function_concurrency,
            retry=gateway_policy(config.async_max_attempts),
            claim_timeout=config.async_claim_timeout,
            result_max_bytes=config.async_result_max_bytes,
            retention=config.async_retention,
        )


@dataclass(frozen=True)
class Reply:
    """What one try got: the function's answer, or the gateway's own error as an answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float
    error: str | None


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


def _retry_wait(policy: RetryPolicy, attempt: int, reply: Reply) -> float:
    retry_after = None
    if reply.status in (429, 503):
        retry_after = retry_after_seconds(next((v for n, v in reply.headers if n.lower() == "retry-after"), None))
    return policy.wait(attempt, retry_after)


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
        self._last = {"reclaim": 0.0, "count": 0.0, "expire": 0.0}
        # No pause between rounds: each waits for calls in the queue's take.
        self._loop = BackgroundLoop("async-worker", self._take, what="async worker round", logger=log)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _take(self) -> None:
        """One round of the loop: take as many due calls as there are free slots (waiting up to a
        second for one), and reclaim abandoned ones now and then; run each in a thread of its own.
        Only free slots are filled, so a call is never held while it waits for one: the queue's
        fair order and caps decide what runs next."""
        free = self._free_slots()
        try:
            deliveries = []
            if self._due("reclaim", min(30.0, self.settings.claim_timeout / 2)):
                deliveries = self.queue.reclaim(self.consumer, self.settings.claim_timeout, free)
                if deliveries:
                    log.info("async calls taken over from a worker gone quiet: %s",
                             ", ".join(delivery.call.call_id for delivery in deliveries))
            if len(deliveries) < free:
                deliveries += self.queue.take(self.consumer, free - len(deliveries), 1.0)
            if self._due("count", _COUNT_EVERY):
                metrics.set_async_calls(self.queue.counts())
            if self._due("expire", _EXPIRE_EVERY):
                self.queue.expire(time.time() - self.settings.retention)
        except GatewayError as exc:
            log.warning("async queue unavailable: %s", exc.message)
            deliveries = []
            self._loop.sleep(1.0)
        finally:
            for _ in range(free - len(deliveries)):
                self._slots.release()
        for delivery in deliveries:
            threading.Thread(target=self._handle, args=(delivery,), daemon=True).start()

    def _free_slots(self) -> int:
        """Wait for a free slot, then take every other free one; how many were taken."""
        self._slots.acquire()
        free = 1
        while free < self.settings.concurrency and self._slots.acquire(blocking=False):
            free += 1
        return free

    def _due(self, job: str, every: float) -> bool:
        """Whether ``job`` was last done more than ``every`` seconds ago; if so it counts as done now."""
        now = time.monotonic()
        if now - self._last[job] < every:
            return False
        self._last[job] = now
        return True

    def _handle(self, delivery: Delivery) -> None:
        call = delivery.call
        policy = call.retry or self.settings.retry
        try:
            if delivery.cancelled:
                delivered = self._callback(call, {"X-Call-State": CANCELLED}, b"")
                self.queue.finish(delivery, Outcome(CANCELLED, None, None, None, None, delivered))
                return
            if delivery.attempt > policy.attempts:
                self._give_up(delivery, policy)
                return
            gate = self._per_function.setdefault(call.function, threading.BoundedSemaphore(self.settings.per_function))
            with gate:
                reply = self._invoke(call)
                if reply.status in policy.codes and delivery.attempt < policy.attempts:
                    log.info("async call %s to %s got %s; retry %d", call.call_id, call.function, reply.status,
                             delivery.attempt)
                    wait = _retry_wait(policy, delivery.attempt, reply)
                    self.queue.release(delivery, wait, reply.status, reply.error)
                    return
                delivered = self._callback(call, self._outcome_headers(reply), reply.body)
            self.queue.finish(delivery, self._outcome(reply, delivered))
        except GatewayError as exc:
            # The queue itself failed; the call stays stored and is reclaimed later.
            log.warning("async call %s left for a retry: %s", call.call_id, exc.message)
        finally:
            self._slots.release()

    def _give_up(self, delivery: Delivery, policy: RetryPolicy) -> None:
        # More hand-outs than tries means earlier ones ended without an outcome: invoking it yet
        # again could kill yet another worker, so it is kept aside instead.
        reason = f"handed out {delivery.attempt} times, more than its {policy.attempts} attempts"
        self.queue.dead_letter(delivery, reason)
        log.error("async call %s to %s moved to the dead letters: %s", delivery.call.call_id, delivery.call.function,
                  reason)

    def _invoke(self, call: AsyncCall) -> Reply:
        """Call the function once; a failure is a reply too."""
        started = time.monotonic()
        try:
            reply = self.forwarder.forward(_proxy_call(call), [call.body] if call.body else None, True)
            body = b"".join(reply.body)
            error = None if reply.status < 400 else f"the function answered {reply.status}"
            result = Reply(reply.status, reply.headers, body, time.monotonic() - started, error)
        except GatewayError as exc:
            result = Reply(exc.status, [], exc.message.encode(), time.monotonic() - started, exc.message)
        metrics.record_invocation(call.function, result.status, result.seconds)
        return result

    def _outcome(self, reply: Reply, delivered: bool | None) -> Outcome:
        kept = reply.body[: self.settings.result_max_bytes]
        result = CallResult(reply.status, end_to_end(reply.headers), kept, len(kept) < len(reply.body))
        state = SUCCEEDED if reply.status < 400 else FAILED
        return Outcome(state, reply.status, reply.seconds, reply.error, result, delivered)

    @staticmethod
    def _outcome_headers(reply: Reply) -> dict[str, str]:
        headers = {
            name: value
            for name, value in end_to_end(reply.headers)
            if name.lower() not in {"content-length", "x-call-id"}
        }
        headers.update({
            "X-Function-Status": str(reply.status),
            "X-Duration-Seconds": f"{reply.seconds:.6f}",
            "X-Call-State": SUCCEEDED if reply.status < 400 else FAILED,
        })
        return headers

    def _callback(self, call: AsyncCall, headers: dict[str, str], body: bytes) -> bool | None:
        """POST the outcome to the call's callback URL, retrying with the gateway's backoff;
        whether it was delivered, None when the call has no callback."""
        if not call.callback_url:
            return None
        headers = {**headers, "X-Call-Id": call.call_id, "X-Function-Name": call.function}
        policy = self.settings.retry
        for attempt in range(1, policy.attempts + 1):
            try:
                response = self._http.request("POST", call.callback_url, body=body, headers=headers, redirect=False)
                if response.status < 500 and response.status != 429:
                    return True
                problem = f"status {response.status}"
            except urllib3.exceptions.HTTPError as exc:
                problem = str(exc)
            if attempt < policy.attempts:
                self._loop.sleep(policy.wait(attempt))
        log.error("callback for async call %s to %s failed after %d attempts: %s",
                  call.call_id, redacted(call.callback_url), policy.attempts, problem)
        metrics.record_callback_failed(call.function)
        return False
