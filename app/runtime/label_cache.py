"""A function's labels, read from the runtime at most once a second per process: what accepting
an async call needs (the function exists, and its retry labels), without two Docker requests per
call (measured: they cost the accept route most of its time, ``bench/async.py``).

A label changed, or a function deleted, is seen within ``ttl`` seconds; a call accepted in
between keeps what was read, as a call keeps the labels it was accepted under anyway.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from app.errors import NotFound
from app.runtime.interfaces import Functions

_MAX_KEPT = 4096


class FunctionLabels:
    """``labels(name, namespace)``: the function's labels, or NotFound, cached ``ttl`` seconds."""

    def __init__(self, functions: Functions, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.functions = functions
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        # (name, namespace) -> (when read, labels or None for "no such function")
        self._read: dict[tuple[str, str | None], tuple[float, dict[str, str] | None]] = {}

    def labels(self, name: str, namespace: str | None) -> dict[str, str]:
        key = (name, namespace)
        now = self._clock()
        read = self._read.get(key)
        if read is None or now - read[0] >= self.ttl:
            try:
                read = (now, dict(self.functions.get_function(name, namespace).labels or {}))
            except NotFound:
                read = (now, None)
            with self._lock:
                if len(self._read) >= _MAX_KEPT:
                    self._read.clear()  # names asked for once, or long gone: read again when asked
                self._read[key] = read
        if read[1] is None:
            raise NotFound(f"Function {name} not found.")
        return read[1]
