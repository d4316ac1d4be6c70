"""Every function service, listed from Docker once and kept until something says it changed.

Listing a thousand services costs Docker about 90 ms and this process 35 ms of JSON, and many
parts want them all, often: the API's list, nginx's routing table (every second), the readiness
prober (every second), cron, the autoscaler, the usage sampler, the time series and each event
stream as it opens. So each process keeps one list, and lists again only when

- Docker reports a service created, changed or removed: a thread (a greenlet under gevent)
  follows Docker's events, filtered to services;
- this gateway changed a function service, in any of its processes: each change rewrites a stamp
  in ``state_dir`` that every read compares, so a list right after a deploy that another worker
  answered already shows it;
- the list is older than ``MAX_AGE``, so an event lost anyhow is not lost for long.

While the event stream is not connected, nothing is kept: every read lists. Reads of one function
(by name) never come from here; they ask Docker.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import uuid
from typing import Callable

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from app.errors import GatewayError
from app.runtime.swarm.client import SwarmClient
from app.runtime.swarm.streams import CuttableStream

log = logging.getLogger(__name__)

# Seconds a list is kept at most, events or not.
MAX_AGE = 30.0
# Seconds between attempts to follow Docker's events, doubling while it stays away.
RETRY_WAIT, MAX_RETRY_WAIT = 1.0, 30.0
_FILTERS = json.dumps({"type": ["service"]})
_READ_SIZE = 64 * 1024


class ServiceCache:
    """The list ``list_services`` answers, kept while nothing changed."""

    def __init__(self, client: SwarmClient, list_services: Callable[[], list[dict]], stamp_path: str,
                 clock: Callable[[], float] = time.monotonic):
        self.client = client
        self._list = list_services
        self._stamp_path = stamp_path
        self._clock = clock
        self._lock = threading.Lock()
        # Moves on every event, (re)connection and change made here: a list taken at another
        # value may miss something.
        self._changes = 0
        self._following = False
        self._started = False
        self._kept: tuple[int, tuple[int, int] | None, float, list[dict]] | None = None

    def services(self) -> list[dict]:
        """Every function service, as ``list_services`` answers (its errors too). The dicts are
        shared with later reads: callers must not change them."""
        self._follow()
        changes, stamp = self._changes, self._stamp()
        kept = self._kept
        if (kept is not None and self._following and kept[0] == changes and kept[1] == stamp
                and self._clock() - kept[2] < MAX_AGE):
            return kept[3]
        listed = self._list()
        self._kept = (changes, stamp, self._clock(), listed)
        return listed

    def changed(self) -> None:
        """A function service was created, changed or removed here: no process keeps a list
        taken before."""
        self._changes += 1
        folder = os.path.dirname(self._stamp_path)
        try:
            os.makedirs(folder, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=folder, delete=False) as stamp:
                stamp.write(uuid.uuid4().hex)
            os.replace(stamp.name, self._stamp_path)
        except OSError as exc:  # the other processes then catch up by Docker's event
            log.warning("services: cannot write %s: %s", self._stamp_path, exc)

    def _stamp(self) -> tuple[int, int] | None:
        # Each change replaces the file with a new one: its inode and time tell them apart, for
        # one system call on every read (a list, a call's lookup).
        try:
            found = os.stat(self._stamp_path)
        except OSError:
            return None
        return found.st_ino, found.st_mtime_ns

    def _follow(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="service-events", daemon=True).start()

    def _run(self) -> None:
        wait = RETRY_WAIT
        while True:
            stream = CuttableStream(self.client)
            try:
                response = stream.start("/events", {"filters": _FILTERS}, "stream its events")
            except GatewayError as exc:
                log.info("services: cannot follow Docker's events (%s); listing every time", exc.message)
                response = None
            if response is not None:
                self._changes += 1
                self._following = True
                try:
                    for _ in response.raw.stream(_READ_SIZE, decode_content=False):
                        self._changes += 1
                        wait = RETRY_WAIT  # it worked: the next break-off is retried soon
                except (OSError, ValueError, AttributeError, Urllib3Error, requests.RequestException) as exc:
                    log.info("services: Docker's events broke off: %s", exc)
                finally:
                    self._following = False
                    self._changes += 1
                    stream.release(response)
            # Docker away, or a stream that ended without an event: longer and longer waits.
            time.sleep(wait)
            wait = min(wait * 2, MAX_RETRY_WAIT)
