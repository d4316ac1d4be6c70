"""Timestamps (app.domain.timestamps): RFC 3339 with any offset read as one canonical UTC form,
by example and as properties."""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.domain.timestamps import from_docker, normalise, parse_rfc3339


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000000000Z"),
        ("2026-01-02T03:04:05.123Z", "2026-01-02T03:04:05.123000000Z"),
        ("2026-01-02T03:04:05.123456789+02:00", "2026-01-02T01:04:05.123456789Z"),
        ("2026-01-02T03:04:05-01:30", "2026-01-02T04:34:05.000000000Z"),
    ],
)
def test_timestamps(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize(
    "text", ["2026-01-02", "2026-01-02T03:04:05", "2026-02-30T00:00:00Z", "yesterday", "2026-01-02T03:04:05.1234567891Z"]
)
def test_bad_timestamps(text):
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def _canonical(moment: datetime, nanos: int) -> str:
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{nanos:09d}Z")


@st.composite
def _fractions(draw) -> tuple[str, int]:
    """('' or '.<1 to 9 digits>', nanoseconds)."""
    digits = draw(st.integers(0, 9))
    if digits == 0:
        return "", 0
    value = draw(st.integers(0, 10**digits - 1))
    return f".{value:0{digits}d}", value * 10 ** (9 - digits)


def _moments(first_year: int = 1, last_year: int = 9999):
    moments = st.datetimes(datetime(first_year, 1, 1), datetime(last_year, 12, 31, 23, 59, 59))
    return moments.map(lambda moment: moment.replace(microsecond=0))


@given(_moments(1000, 9998), _fractions(), st.integers(-(24 * 60 - 1), 24 * 60 - 1), st.sampled_from("Tt "))
def test_any_offset_normalises_to_the_same_utc_instant(utc, fraction, offset, separator):
    text_fraction, nanos = fraction
    local = utc + timedelta(minutes=offset)
    sign = "+" if offset >= 0 else "-"
    zone = f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    text = f"{_canonical(local, 0)[:10]}{separator}{_canonical(local, 0)[11:19]}{text_fraction}{zone}"
    assert parse_rfc3339(text) == (calendar.timegm(utc.timetuple()), nanos)
    assert normalise(text) == _canonical(utc, nanos)


# The canonical form is fixed-width, also before the year 1000 (strftime's %Y does not pad).
@given(_moments(), _fractions())
@example(datetime(999, 12, 31, 23, 59, 59), ("", 0))
def test_normalised_timestamps_are_canonical_and_stable(utc, fraction):
    text_fraction, nanos = fraction
    canonical = normalise(f"{_canonical(utc, 0)[:19]}{text_fraction}Z")
    assert canonical == _canonical(utc, nanos)
    assert normalise(canonical) == canonical


@given(_moments(1000, 9999), _fractions())
def test_docker_timestamps_take_the_fast_path_to_the_same_result(utc, fraction):
    text_fraction, nanos = fraction
    text = f"{_canonical(utc, 0)[:19]}{text_fraction.rstrip('0').rstrip('.')}Z"
    assert from_docker(text) == normalise(text) == _canonical(utc, nanos)


_edge_timestamps = st.builds(
    "{}T{}{}".format,
    st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-29", "2024-02-29", "2026-13-01"]),
    st.sampled_from(["00:00:00", "23:59:59", "24:00:00", "23:59:60"]),
    st.one_of(st.sampled_from(["Z", "+00:00"]), st.from_regex(r"[+-][0-9]{2}:[0-9]{2}", fullmatch=True)),
)


_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z")
_timestamp_soup = st.text(alphabet=st.one_of(st.sampled_from("0123456789-:T.Z+ "), st.characters()), max_size=30)


# An offset that moves a date out of range is a ValueError (a 400 naming `since`), not an OverflowError (a 500).
@given(st.one_of(_edge_timestamps, _timestamp_soup))
@example("0001-01-01T00:00:00+01:00")
@example("9999-12-31T23:59:59-00:01")
def test_timestamp_parsing_raises_only_value_error(text):
    try:
        normalised = normalise(text)
    except ValueError:
        pass
    else:
        assert _CANONICAL.fullmatch(normalised), normalised
