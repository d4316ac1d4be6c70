"""Waiting for a condition, with a bound: what the tests do instead of sleeping and hoping."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import pytest

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 90, interval: float = 0.5, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns a truthy value, and return that value; fail the test,
    naming ``what``, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
