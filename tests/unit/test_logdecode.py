"""Docker's log stream decoded into messages (app.runtime.swarm.logdecode), wherever the network
cuts it, without Docker."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from app.domain.models import LogMessage
from app.runtime.swarm.logdecode import DockerLogDecoder

DETAILS = "com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id={task}"


def frame(payload: bytes, stream: int = 1) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(payload)) + payload


def entry(ts: str, text: str, task: str = "t1", end: str = "\n") -> bytes:
    return f"{ts} {DETAILS.format(task=task)} {text}{end}".encode()


def decode_in_pieces(data: bytes, cuts: list[int], **kwargs) -> list[LogMessage]:
    decoder = DockerLogDecoder("fn", "ns", **kwargs)
    out, start = [], 0
    for cut in sorted(set(cuts)) + [len(data)]:
        out += decoder.feed(data[start:cut])
        start = cut
    return out + decoder.finish()


STREAM = (
    frame(entry("2026-01-01T00:00:01.5Z", "first"))
    + frame(entry("2026-01-01T00:00:02.000000001Z", "a" * 100, end=""))
    + frame(entry("2026-01-01T00:00:02.000000002Z", "b" * 100, end=""))
    + frame(entry("2026-01-01T00:00:03Z", "err", task="t2"), stream=2)
    + frame(entry("2026-01-01T00:00:02.000000003Z", "tail-of-long"))
    + frame(entry("2026-01-01T00:00:04Z", "ünïcode – ok", task="t%C3%A9"))  # details are URL-encoded
    + frame(b"no timestamp here\n")
)
EXPECTED = [
    ("t1", "2026-01-01T00:00:01.500000000Z", "first"),
    ("t2", "2026-01-01T00:00:03.000000000Z", "err"),
    ("t1", "2026-01-01T00:00:02.000000001Z", "a" * 100 + "b" * 100 + "tail-of-long"),
    ("té", "2026-01-01T00:00:04.000000000Z", "ünïcode – ok"),
    ("", None, "no timestamp here"),
]


def _summary(messages):
    return [(m.instance, m.timestamp if m.instance or m.text != "no timestamp here" else None, m.text) for m in messages]


def test_decoder_joins_split_lines_and_keeps_unparsable_ones():
    assert _summary(decode_in_pieces(STREAM, [])) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_decoder_does_not_care_where_the_network_cuts(cuts):
    assert _summary(decode_in_pieces(STREAM, cuts)) == EXPECTED


def test_every_message_has_the_five_fields_and_a_nanosecond_timestamp():
    for message in decode_in_pieces(STREAM, []):
        assert (message.name, message.namespace) == ("fn", "ns")
        assert len(message.timestamp) == 30 and message.timestamp.endswith("Z")


def test_a_line_without_end_is_cut_at_the_limit_and_never_lost():
    pieces = b"".join(frame(entry("2026-01-01T00:00:01Z", "x" * 60, end="")) for _ in range(5))
    messages = decode_in_pieces(pieces, [], max_message=100)
    assert "".join(m.text for m in messages) == "x" * 300
    assert all(len(m.text) <= 120 for m in messages)


def test_tty_streams_without_frames_are_read_as_lines():
    data = entry("2026-01-01T00:00:01Z", "one") + b"plain\n" + entry("2026-01-01T00:00:02Z", "two", end="")
    assert [m.text for m in decode_in_pieces(data, [5, 50])] == ["one", "plain", "two"]
