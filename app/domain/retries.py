"""How an async call is retried and how many of a function's async calls may run at once (pure).

The labels are OpenFaaS Pro's: ``com.openfaas.retry.attempts`` (tries in all, the first one
included), ``com.openfaas.retry.codes`` (the statuses worth another try, such as
``429,502,500,504,408``), ``com.openfaas.retry.min_wait`` and ``com.openfaas.retry.max_wait`` (Go
durations: the first wait, doubled for each later one up to the most). A label left out takes
the gateway's setting. ``com.openfaas.queue.max_inflight`` caps how many of the function's async
calls run at once across every gateway sharing the queue (0, the default, is no cap).

The policy is read when a call is accepted and stored with it, so the worker needs no lookup
and a call keeps the rules it was accepted under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.domain.labels import label_duration, label_int

ATTEMPTS = "com.openfaas.retry.attempts"
CODES = "com.openfaas.retry.codes"
MIN_WAIT = "com.openfaas.retry.min_wait"
MAX_WAIT = "com.openfaas.retry.max_wait"
MAX_INFLIGHT = "com.openfaas.queue.max_inflight"
# Bounds that keep a typo from keeping a call in the queue for days.
_MAX_ATTEMPTS = 100
_MAX_WAIT_SECONDS = 3600.0
_MAX_INFLIGHT = 10000
_CODE = re.compile(r"[1-5][0-9][0-9]")


@dataclass(frozen=True)
class RetryPolicy:
    """Tries in all, the statuses worth another one, and the first and longest wait in seconds."""

    attempts: int
    codes: frozenset[int]
    min_wait: float
    max_wait: float

    @classmethod
    def from_labels(cls, labels: dict[str, str] | None, default: "RetryPolicy") -> "RetryPolicy":
        """The policy the retry labels set over ``default``. Raises ValueError naming the label."""
        labels = labels or {}
        min_wait = label_duration(labels, MIN_WAIT, default.min_wait)
        max_wait = label_duration(labels, MAX_WAIT, default.max_wait)
        for name, value in ((MIN_WAIT, min_wait), (MAX_WAIT, max_wait)):
            if value > _MAX_WAIT_SECONDS:
                raise ValueError(f"label {name} must be at most {_MAX_WAIT_SECONDS:g}s, not {labels.get(name)!r}")
        # One label set alone moves the other default out of its way; both set must agree.
        if min_wait > max_wait:
            if MIN_WAIT in labels and MAX_WAIT in labels:
                raise ValueError(f"label {MIN_WAIT} ({min_wait:g}s) must not be longer than {MAX_WAIT} ({max_wait:g}s)")
            min_wait, max_wait = (min_wait, min_wait) if MIN_WAIT in labels else (max_wait, max_wait)
        policy = cls(
            attempts=label_int(labels, ATTEMPTS, default.attempts, 1, _MAX_ATTEMPTS),
            codes=_codes(labels.get(CODES), default.codes),
            min_wait=min_wait,
            max_wait=max_wait,
        )
        return policy

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after try ``attempt`` (1 for the first) failed: ``min_wait`` doubled
        for each try before it, at most ``max_wait``; a ``Retry-After`` the function sent is
        honoured up to ``max_wait``."""
        backoff = min(self.min_wait * 2 ** (attempt - 1), self.max_wait)
        if retry_after is None:
            return backoff
        return min(max(retry_after, 0.0), self.max_wait)

    def to_json(self) -> dict:
        return {"attempts": self.attempts, "codes": sorted(self.codes), "min_wait": self.min_wait,
                "max_wait": self.max_wait}

    @classmethod
    def from_json(cls, values: dict) -> "RetryPolicy":
        """The policy ``to_json`` wrote; raises KeyError, TypeError or ValueError for anything else."""
        return cls(int(values["attempts"]), frozenset(int(code) for code in values["codes"]),
                   float(values["min_wait"]), float(values["max_wait"]))


def max_inflight(labels: dict[str, str] | None) -> int:
    """The function's cap on async calls running at once, 0 for none. Raises ValueError naming
    the label."""
    return label_int(labels or {}, MAX_INFLIGHT, 0, 0, _MAX_INFLIGHT)


def check_labels(labels: dict[str, str] | None) -> None:
    """Raise ValueError naming the first retry or queue label that holds a bad value."""
    # Any complete default will do: only the labels' own values are checked.
    RetryPolicy.from_labels(labels, RetryPolicy(1, frozenset(), 0.0, _MAX_WAIT_SECONDS))
    max_inflight(labels)


def _codes(text: str | None, default: frozenset[int]) -> frozenset[int]:
    if text is None:
        return default
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(_CODE.fullmatch(part) for part in parts):
        raise ValueError(f"label {CODES} must be HTTP statuses separated by commas, such as 429,502,503, not {text!r}")
    return frozenset(int(part) for part in parts)


def retry_after_seconds(value: str | None) -> float | None:
    """The seconds a ``Retry-After`` header in seconds asks for; None when absent or an HTTP
    date (not worth a clock comparison here) or garbage."""
    if value and re.fullmatch(r"\s*[0-9]{1,7}\s*", value):
        return float(value)
    return None


def gateway_policy(attempts: int) -> RetryPolicy:
    """The retry policy of a function that sets no retry label: ``attempts`` tries (the gateway's
    ``async_max_attempts``) on the statuses a busy or restarting function answers."""
    return RetryPolicy(attempts, frozenset({429, 502, 503, 504}), 0.5, 30.0)


def call_policy(labels: dict[str, str] | None, default: RetryPolicy) -> tuple[RetryPolicy | None, int]:
    """What an async call to a function with ``labels`` is stored with: its retry policy (None
    when no retry label is set, so ``default`` applies when it runs) and its ``max_inflight``.
    Raises ValueError naming a bad label."""
    labels = labels or {}
    own = any(name in labels for name in (ATTEMPTS, CODES, MIN_WAIT, MAX_WAIT))
    return (RetryPolicy.from_labels(labels, default) if own else None), max_inflight(labels)
