"""Small HTTP servers on loopback for tests: function stand-ins (one that answers, one that fails twice
per call first), a callback receiver, and a DNS stand-in."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from app.errors import NotFound
from app.runtime.interfaces import Functions


@contextlib.contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Run ``handler`` on a free loopback port for the duration of the block; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class Echo(BaseHTTPRequestHandler):
    """Answers with what it received; a few paths behave specially."""

    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while size := int(self.rfile.readline().strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(length)
        if self.path.startswith("/slow"):
            # Simulates a function slower than the proxy's upstream timeout; the test waits for
            # the proxy's 504, not for this.
            time.sleep(2)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/raw"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        reply = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "length": len(body),
                "sha": hashlib.sha256(body).hexdigest(),
            }
        ).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.send_header("X-Function", "echo")
        self.send_header("Connection", "keep-alive, X-Private")
        self.send_header("X-Private", "hop")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy gave up first (the 504 test): nothing to answer to

    def log_message(self, *args):
        pass


class Lookup:
    """DNS stand-in: ``tasks.<service>`` (``<name>`` or ``<name>_<namespace>``) answers loopback
    while the function has a running replica."""

    def __init__(self, functions: Functions):
        self.functions = functions

    def __call__(self, host: str) -> list[str]:
        try:
            name, _, namespace = host.removeprefix("tasks.").partition("_")
            available = self.functions.get_function(name, namespace or None).available_replicas
        except NotFound:
            return []
        return ["127.0.0.1"] * min(available, 1)


class Receiver(BaseHTTPRequestHandler):
    """Collects callbacks; answers 500 while ``failing`` is set."""

    protocol_version = "HTTP/1.1"
    received: list[dict] = []
    failing = False

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = 500 if Receiver.failing else 200
        Receiver.received.append({"headers": dict(self.headers.items()), "body": body, "answered": status})
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Flaky(Echo):
    """Answers 503 twice per call id (with ``Retry-After: retry_after`` when set), then like Echo."""

    seen: dict[str, int] = {}
    retry_after: str | None = None

    def _answer(self):
        call_id = self.headers.get("X-Call-Id")
        Flaky.seen[call_id] = Flaky.seen.get(call_id, 0) + 1
        if Flaky.seen[call_id] <= 2:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(503)
            if Flaky.retry_after is not None:
                self.send_header("Retry-After", Flaky.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super()._answer()

    do_POST = _answer
