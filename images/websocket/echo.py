"""A function whose own server speaks websockets on :8080 (RFC 6455), for the tests and the
benchmark of websockets through the gateway: standard library only.

GET /_/health answers 200 (the gateway's default readiness probe). An upgrade to websocket is
accepted and every text or binary message is sent back as it came; a ping gets its pong, a close
its close. Any other request answers 200 with a sentence, as a function that does not speak
websockets would: so ``?refuse=1`` on an upgrade shows what a refused upgrade looks like.
"""

import base64
import hashlib
import socketserver
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_exactly(stream, count):
    data = stream.read(count)
    if len(data) < count:
        raise EOFError
    return data


def frames(stream):
    """(opcode, payload) of each frame the client sends, unmasked."""
    while True:
        first, second = read_exactly(stream, 2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", read_exactly(stream, 2))
        elif length == 127:
            (length,) = struct.unpack("!Q", read_exactly(stream, 8))
        mask = read_exactly(stream, 4) if second & 0x80 else b"\0\0\0\0"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(read_exactly(stream, length)))
        yield first & 0x0F, payload


def frame(opcode, payload):
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            request_line = self.rfile.readline().decode("latin-1").strip()
            if not request_line:
                return
            headers = {}
            while (line := self.rfile.readline().decode("latin-1").strip()):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            target = request_line.split(" ")[1] if " " in request_line else "/"
            if headers.get("upgrade", "").lower() == "websocket" and "refuse=1" not in target:
                return self.websocket(headers["sec-websocket-key"])
            body = self.rfile.read(int(headers.get("content-length", "0") or 0)) and b""
            text = b"ok\n" if target.startswith("/_/health") else b"This function speaks websockets.\n"
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(text), text) + body)

    def websocket(self, key):
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
        self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        try:
            for opcode, payload in frames(self.rfile):
                if opcode == 0x8:
                    self.wfile.write(frame(0x8, payload[:2]))
                    return
                self.wfile.write(frame(0xA if opcode == 0x9 else opcode, payload))
        except (EOFError, OSError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    Server(("0.0.0.0", 8080), Handler).serve_forever()
