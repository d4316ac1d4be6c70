"""RFC 3339 timestamps with nanoseconds, which Python's datetime cannot hold.

Timestamps are normalised to UTC with exactly nine fractional digits
(``2026-01-02T03:04:05.123456789Z``), so that string order is time order.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))", re.ASCII
)


def parse_rfc3339(text: str) -> tuple[int, int]:
    """Return (whole seconds since the epoch, nanoseconds) for an RFC 3339 timestamp.

    Fractional seconds (up to nine digits) and zone offsets are optional parts of the format;
    a zone is required. Raises ValueError for anything else.
    """
    match = _RFC3339.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp such as 2026-01-02T03:04:05Z")
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date and time: {exc}") from None
    if match.group(9):
        offset = timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
        try:
            moment -= offset if match.group(9) == "+" else -offset
        except OverflowError:
            raise ValueError(f"{text!r} is outside the years 1 to 9999 in UTC") from None
    nanos = int((match.group(7) or "0").ljust(9, "0"))
    return int(moment.timestamp()), nanos


def format_rfc3339_nano(seconds: int, nanos: int) -> str:
    """Format epoch seconds and nanoseconds as UTC RFC 3339 with nine fractional digits."""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    # Not strftime's %Y: it does not pad years before 1000 to four digits on every platform.
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{nanos:09d}Z"


# Docker writes UTC times with up to nine fractional digits and trailing zeros dropped.
_DOCKER_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(\d{1,9}))?Z", re.ASCII)


def normalise(text: str) -> str:
    """The canonical form of an RFC 3339 timestamp. Raises ValueError when it is not one."""
    return format_rfc3339_nano(*parse_rfc3339(text))


def from_docker(text: str) -> str:
    """``normalise`` for timestamps Docker wrote, with a fast path for its usual UTC form.

    The fast path trusts the digits (Docker writes valid dates); anything else is checked in
    full. Raises ValueError when the text is not a timestamp.
    """
    match = _DOCKER_UTC.fullmatch(text)
    if match and match.group(1) is not None:
        return f"{text[:19]}.{match.group(1).ljust(9, '0')}Z"
    return normalise(text)


def now_rfc3339_nano() -> str:
    """The current time in the canonical form."""
    nanos = time.time_ns()
    return format_rfc3339_nano(nanos // 1_000_000_000, nanos % 1_000_000_000)
