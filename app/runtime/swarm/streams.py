"""A streamed Docker response that another thread or greenlet may cut at any moment.

Log and event streams read one long-lived response in the thread that iterates them, while the
deadline and disconnect watcher (``app.web.streaming``) closes them from another. ``CuttableStream``
holds that response: ``start`` sends the request unless the stream is already closed, ``release``
frees it once read, and ``close`` shuts the connection down so the blocked read returns.
"""

from __future__ import annotations

import os
import socket
import threading

import requests

from app.runtime.swarm.client import SwarmClient, docker_errors


class CuttableStream:
    """The one open streamed response of a log or event stream, or none."""

    def __init__(self, client: SwarmClient):
        self.client = client
        self._lock = threading.Lock()
        self._response: requests.Response | None = None
        self.closed = False

    def start(self, path: str, params: dict, action: str) -> requests.Response | None:
        """Send ``GET path``; None when the stream was closed first.

        Raises the domain errors of ``docker_errors`` naming ``action``.
        """
        with self._lock:
            if self.closed:
                return None
            with docker_errors(action):
                # No read timeout: a quiet stream is normal; the watcher bounds it.
                # "Connection: close" keeps these long-lived connections out of the shared pool.
                self._response = self.client.request(
                    "GET", path, params=params, stream=True, timeout=(10, None), headers={"Connection": "close"}
                )
            return self._response

    def release(self, response: requests.Response) -> None:
        """Close a response that ``start`` returned, once its reader is done with it."""
        # Under the lock, so close() never shuts down a descriptor number already reused.
        with self._lock:
            if self._response is response:
                self._response = None
            response.close()

    def close(self) -> None:
        """End the stream now; safe to call repeatedly and from another thread or greenlet.

        The socket is only shut down, not closed: the reading side may be inside a read of the
        same buffered response, which must not be closed under it. Its read then ends and the
        reader releases the response itself. Shutting down a duplicate of the descriptor acts on
        the shared socket without touching the response's own objects.
        """
        with self._lock:
            self.closed = True
            if self._response is None:
                return
            try:
                duplicate = socket.socket(fileno=os.dup(self._response.raw.fileno()))
            except (OSError, ValueError):
                return  # already closed
            with duplicate:
                try:
                    duplicate.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
