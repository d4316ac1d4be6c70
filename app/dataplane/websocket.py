"""Websocket connections to a function through the gateway's own proxy: the path of the calls nginx
does not route itself (a function at zero replicas, one with no ready replica yet).

A websocket opens as an HTTP/1.1 request with ``Upgrade: websocket``; a function that speaks
websockets answers ``101 Switching Protocols``, and from then on the connection carries frames
both ways. ``open_tunnel`` sends the upgrade request to a ready replica (scaling from zero like
any call), with the call's end-to-end headers and the two that ask for the upgrade, and reads the
answer's head. A function that answers anything else did not upgrade: a 502 saying what it
answered. ``Tunnel.run`` then copies bytes both ways between the client's connection and the
replica's, without reading the frames, until either side closes or nothing passes either way for
``idle_timeout`` seconds.
"""

from __future__ import annotations

import selectors
import socket
from dataclasses import dataclass

from app.dataplane.forwarder import CONNECT_ATTEMPTS, CONNECT_TIMEOUT, Call
from app.dataplane.upstreams import Upstreams
from app.errors import UpstreamFailed, UpstreamTimeout

_CHUNK = 64 * 1024
# An answer's head longer than this is no HTTP answer worth waiting for.
_MAX_HEAD = 64 * 1024


@dataclass
class Tunnel:
    """A replica's connection that accepted the upgrade: ``head`` is its 101 answer as sent,
    ``early`` what it sent after the head in the same read (frames already on their way)."""

    upstream: socket.socket
    head: bytes
    early: bytes

    def run(self, client: socket.socket, idle_timeout: float) -> None:
        """Send the head and everything after it to ``client``, and the client's bytes to the
        replica, until one side closes or ``idle_timeout`` seconds pass with nothing either way;
        then close the replica's connection (the caller owns ``client``)."""
        try:
            client.sendall(self.head + self.early)
            client.settimeout(idle_timeout)
            self.upstream.settimeout(idle_timeout)
            peers = {client: self.upstream, self.upstream: client}
            with selectors.DefaultSelector() as selector:
                for side in peers:
                    selector.register(side, selectors.EVENT_READ)
                while events := selector.select(idle_timeout):
                    for key, _ in events:
                        data = key.fileobj.recv(_CHUNK)
                        if not data:
                            return
                        peers[key.fileobj].sendall(data)
        except OSError:
            return  # either side went away: the tunnel is over
        finally:
            self.upstream.close()


def _request(call: Call, address: str) -> bytes:
    target = (call.path or "/") + (f"?{call.query}" if call.query else "")
    lines = [f"{call.method} {target} HTTP/1.1", f"Host: {address}", "Connection: Upgrade", "Upgrade: websocket"]
    lines += [f"{name}: {value}" for name, value in call.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_head(upstream: socket.socket) -> tuple[bytes, bytes]:
    received = b""
    while b"\r\n\r\n" not in received:
        data = upstream.recv(_CHUNK)
        if not data or len(received) > _MAX_HEAD:
            raise OSError("the connection ended before a whole answer")
        received += data
    head, _, early = received.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", early


def _connect(upstreams: Upstreams, function: str) -> socket.socket:
    # As the proxy does: a replica that refuses or stays silent is gone; try another.
    for attempt in range(CONNECT_ATTEMPTS):
        host, _, port = upstreams.address(function).rpartition(":")
        try:
            return socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            upstreams.forget(function)
            if attempt == CONNECT_ATTEMPTS - 1:
                raise UpstreamFailed(f"Function {function} could not be reached: {exc}.") from None
    raise AssertionError("unreachable")  # pragma: no cover


def open_tunnel(upstreams: Upstreams, call: Call, answer_timeout: float) -> Tunnel:
    """Ask a replica of ``call.function`` to upgrade, waiting ``answer_timeout`` for its answer.

    Raises FunctionNotFound (404) and NoReadyReplica (503) as any call, UpstreamFailed (502) when
    the replica cannot be reached or does not switch protocols, UpstreamTimeout (504) when it does
    not answer in time.
    """
    upstream = _connect(upstreams, call.function)
    try:
        upstream.settimeout(answer_timeout)
        host, port = upstream.getpeername()[:2]
        upstream.sendall(_request(call, f"{host}:{port}"))
        head, early = _read_head(upstream)
    except TimeoutError:
        upstream.close()
        raise UpstreamTimeout(f"Function {call.function} did not answer within {answer_timeout:g}s.") from None
    except OSError as exc:
        upstream.close()
        raise UpstreamFailed(f"Function {call.function} failed: {exc}.") from None
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    if status_line.split(" ")[1:2] != ["101"]:
        upstream.close()
        raise UpstreamFailed(f"Function {call.function} did not accept the websocket upgrade: it answered {status_line!r}.")
    return Tunnel(upstream, head, early)
