"""Whether this worker process is shutting down, for requests that wait on purpose (nginx's
request for an unchanged routing table, held until the table changes): they answer at once
then, instead of holding up the worker's graceful shutdown."""

from __future__ import annotations

from typing import Callable


class Shutdown:
    """Says whether the process is stopping: never, until ``follow`` gives it the server's word
    (gunicorn's worker, once it is no longer alive: ``start_background_work``)."""

    def __init__(self) -> None:
        self._stopping: Callable[[], bool] = lambda: False

    def follow(self, stopping: Callable[[], bool]) -> None:
        self._stopping = stopping

    @property
    def stopping(self) -> bool:
        return self._stopping()
