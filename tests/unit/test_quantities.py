"""Memory and CPU quantities (app.domain.quantities): examples, then properties checked against
the units' own arithmetic."""

from __future__ import annotations

import math
import string
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.images import parse_image
from app.domain.quantities import parse_cpu, parse_memory


@pytest.mark.parametrize(
    "text, size",
    [
        ("128M", 128 * 2**20),
        ("128Mi", 128 * 2**20),
        ("1G", 2**30),
        ("512k", 512 * 1024),
        ("1048576", 2**20),
        ("1.5Gi", 3 * 2**29),
        ("64mb", 64 * 2**20),
    ],
)
def test_memory(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["", "M", "-1M", "0", "12X", "1 G B", "1e6", "0.1"])
def test_memory_refused(text):
    with pytest.raises(ValueError):
        parse_memory(text)


@pytest.mark.parametrize("text, nano", [("0.5", 500_000_000), ("1", 10**9), ("500m", 500_000_000), ("2.25", 2_250_000_000)])
def test_cpu(text, nano):
    assert parse_cpu(text) == nano


@pytest.mark.parametrize("text", ["", "0", "0m", "-1", "1c", "m", "1.5.5"])
def test_cpu_refused(text):
    with pytest.raises(ValueError):
        parse_cpu(text)


@given(st.integers(min_value=1, max_value=2**30), st.sampled_from(["", "k", "K", "Ki", "M", "Mi", "m", "G", "Gi"]))
def test_memory_property(number, suffix):
    shift = {"": 0, "k": 10, "m": 20, "g": 30}[suffix[:1].lower()]
    assert parse_memory(f"{number}{suffix}") == number << shift


@given(st.integers(min_value=1, max_value=64_000))
def test_millicores_equal_cores(milli):
    assert parse_cpu(f"{milli}m") == milli * 1_000_000


@given(st.text(max_size=12))
def test_quantity_parsers_only_raise_value_error(text):
    for parse in (parse_memory, parse_cpu, parse_image):
        try:
            parse(text)
        except ValueError:
            pass


_MEMORY_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}


@given(
    st.integers(0, 10**6),
    st.one_of(st.none(), st.integers(0, 10**6 - 1).map(str)),
    st.sampled_from(["", "k", "K", "m", "M", "g", "G", "t", "T"]),
    st.sampled_from(["", "i", "I"]),
    st.sampled_from(["", "b", "B"]),
    st.sampled_from(["", " ", "  "]),
)
def test_memory_is_the_number_times_a_binary_multiple(whole, fraction, unit, binary, byte, space):
    if not unit:
        binary = ""  # "12i" is not a quantity.
    text = f"{whole}{'.' + fraction if fraction is not None else ''}{space}{unit}{binary}{byte}"
    if not (unit or binary or byte):
        text = text.rstrip()
    exact = (Fraction(f"{whole}.{fraction}") if fraction is not None else Fraction(whole)) * 2 ** _MEMORY_SHIFT[unit.lower()]
    if math.floor(exact) == 0:
        with pytest.raises(ValueError):
            parse_memory(text)
    else:
        assert parse_memory(text) == math.floor(exact), text


@given(st.integers(0, 10**4), st.one_of(st.none(), st.text(alphabet=string.digits, min_size=1, max_size=12)), st.booleans())
def test_cpu_is_nano_cpus_of_cores_or_millicores(whole, fraction, milli):
    text = f"{whole}{'.' + fraction if fraction is not None else ''}{'m' if milli else ''}"
    nano = math.floor(Fraction(text.rstrip("m")) * 10**9 / (1000 if milli else 1))
    if nano == 0:
        with pytest.raises(ValueError):
            parse_cpu(text)
    else:
        assert parse_cpu(text) == nano


@given(st.integers(1, 10**9))
def test_millicores_and_cores_agree(milli):
    assert parse_cpu(f"{milli}m") * 1000 == parse_cpu(str(milli))
    assert parse_cpu(f"{milli}m") == parse_cpu(f"{milli // 1000}.{milli % 1000:03d}")


_quantity_soup = st.text(alphabet=st.one_of(st.sampled_from("0123456789.mMkKgGtTiIbB -+e"), st.characters()), max_size=14)


@given(_quantity_soup)
def test_quantity_parsers_return_positive_integers_or_raise_value_error(text):
    for parse in (parse_memory, parse_cpu):
        try:
            value = parse(text)
        except ValueError:
            continue
        assert isinstance(value, int) and value > 0
