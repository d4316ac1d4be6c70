"""Streamed responses (app.web.streaming): when a client is gone, and the heartbeats of a quiet
event stream."""

from __future__ import annotations

import socket
import threading

from app.web.streaming import client_gone, sse_stream


def test_a_client_is_gone_only_once_its_side_is_closed():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert not client_gone(ours)
        theirs.sendall(b"GET / HTTP/1.1\r\n")  # a pipelined request is readable, but no EOF
        assert not client_gone(ours)
        assert ours.recv(64)
        theirs.close()
        assert client_gone(ours)
    assert client_gone(ours)  # closed here too: nothing more can be told, so it is gone
    assert not client_gone(None)


def test_a_quiet_event_stream_sends_heartbeats():
    class Quiet:
        closed = threading.Event()

        def __iter__(self):
            self.closed.wait(10)
            return iter([])

        def close(self):
            self.closed.set()

    body = sse_stream(Quiet(), lambda e: {}, deadline=10, client=None, heartbeat=0.01)
    assert next(body) == b": stream open\n\n"
    assert next(body) == b": heartbeat\n\n"
    body.close()
    assert Quiet.closed.is_set()  # leaving the stream closes its source
