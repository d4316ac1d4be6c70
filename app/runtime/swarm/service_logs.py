"""Function logs from Swarm: the ``LogSource`` implementation over the Docker log endpoints.

Docker applies ``tail`` to each task separately, so for ``tail=N`` the last N lines of every task
are fetched, merged by timestamp and cut to the last N overall; a follow stream then continues
from the newest of those lines. ``close`` may be called from another thread or greenlet (the
deadline and disconnect watcher): it shuts the Docker connection down at once, which ends the
blocked read in the iterating one.
"""

from __future__ import annotations

import logging
from typing import Iterator

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from app.domain.models import LogMessage, LogRequest
from app.domain.timestamps import parse_rfc3339
from app.runtime.swarm.client import SwarmClient
from app.runtime.swarm.logdecode import DockerLogDecoder
from app.runtime.swarm.lookup import Lookup
from app.runtime.swarm.streams import CuttableStream

log = logging.getLogger(__name__)
_READ_SIZE = 64 * 1024
_BATCH = 1000


class SwarmLogSource:
    """Opens log streams of the functions ``lookup`` finds."""

    def __init__(self, lookup: Lookup):
        self.lookup = lookup

    def open(self, request: LogRequest) -> "SwarmLogStream":
        """Check the function (and instance) exist, then return a stream not yet started.

        Raises NotFound (404) for an unknown function or instance, BackendUnavailable (503)
        when Docker cannot be reached.
        """
        if request.instance:
            task = self.lookup.function_task(request.name, request.instance, request.namespace)
            path = f"/tasks/{task['ID']}/logs"
        else:
            path = f"/services/{self.lookup.function_service(request.name, request.namespace)['ID']}/logs"
        return SwarmLogStream(self.lookup.client, path, request)


class SwarmLogStream:
    """Iterate to receive LogMessages; ``close`` ends the stream from anywhere."""

    def __init__(self, client: SwarmClient, path: str, request: LogRequest):
        self.path = path
        self.request = request
        self._stream = CuttableStream(client)

    def __iter__(self) -> Iterator[list[LogMessage]]:
        request = self.request
        if request.tail is None:
            yield from self._read(follow=request.follow, since=request.since, tail=None)
            return
        backlog = sorted(
            (message for batch in self._read(follow=False, since=request.since, tail=request.tail) for message in batch),
            key=lambda m: m.timestamp,
        )[-request.tail :]
        for start in range(0, len(backlog), _BATCH):
            yield backlog[start : start + _BATCH]
        if not request.follow:
            return
        boundary = backlog[-1].timestamp if backlog else request.since
        # Docker's "since" includes the boundary itself: skip the lines already sent.
        sent = {(m.instance, m.text) for m in backlog if m.timestamp == boundary}
        for batch in self._read(follow=True, since=boundary, tail=None):
            yield [m for m in batch if m.timestamp != boundary or (m.instance, m.text) not in sent]

    def _read(self, *, follow: bool, since: str | None, tail: int | None) -> Iterator[list[LogMessage]]:
        params = {"stdout": 1, "stderr": 1, "timestamps": 1, "details": 1, "follow": int(follow)}
        params["tail"] = str(tail) if tail is not None else "all"
        if since:
            seconds, nanos = parse_rfc3339(since)
            params["since"] = f"{seconds}.{nanos:09d}"
        response = self._stream.start(self.path, params, f"read the logs of {self.request.name}")
        if response is None:
            return
        decoder = DockerLogDecoder(self.request.name, self.request.namespace)
        pending: list[LogMessage] = []
        try:
            for chunk in response.raw.stream(_READ_SIZE, decode_content=False):
                pending += self._wanted(decoder.feed(chunk))
                # Docker sends one HTTP chunk per line. A follow stream passes each on at once;
                # a finite read collects them so that many lines cost one write.
                if follow or len(pending) >= _BATCH:
                    yield pending
                    pending = []
        except (OSError, ValueError, AttributeError, Urllib3Error, requests.RequestException) as exc:
            # A read ended by close() fails in ways that depend on the moment; only a failure
            # nobody asked for is worth a log line.
            if not self._stream.closed:
                log.warning("log stream of %s broke: %s", self.request.name, exc)
        finally:
            self._stream.release(response)
        yield pending + self._wanted(decoder.finish())

    def _wanted(self, messages: list[LogMessage]) -> list[LogMessage]:
        since = self.request.since
        return [m for m in messages if since is None or m.timestamp >= since]

    def close(self) -> None:
        """End the stream now; safe to call repeatedly and from another thread or greenlet."""
        self._stream.close()
