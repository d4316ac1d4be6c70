"""The names of functions and secrets (app.domain.names): properties checked against an oracle
written from each rule's wording."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.names import function_name_error, secret_name_error
from tests.unit.helpers import function_names, secret_names

_FUNCTION_CHARS = frozenset(string.ascii_lowercase + string.digits + "-")
_SECRET_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")


def _is_function_name(name: str) -> bool:
    """The contract's DNS label: 1 to 63 of [a-z0-9-], not starting or ending with '-'."""
    return 0 < len(name) <= 63 and set(name) <= _FUNCTION_CHARS and "-" not in (name[0], name[-1])


def _is_secret_name(name: str) -> bool:
    """1 to 50 of [a-zA-Z0-9-_.], starting and ending with a letter or digit."""
    return 0 < len(name) <= 50 and set(name) <= _SECRET_CHARS and name[0] not in "-_." and name[-1] not in "-_."


@st.composite
def _spoiled(draw, valid, bad_chars: str, edge_chars: str, limit: int) -> str:
    """A valid name made invalid: a bad or non-ASCII character, a bad first or last character,
    one character too many (or more), or nothing at all."""
    name = draw(valid)
    kind = draw(st.sampled_from(["inside", "edge", "long", "empty"]))
    if kind == "inside":
        char = draw(st.one_of(st.sampled_from(bad_chars), st.characters(min_codepoint=128)))
        at = draw(st.integers(0, len(name)))
        return name[:at] + char + name[at:]
    if kind == "edge":
        char = draw(st.sampled_from(edge_chars))
        return draw(st.sampled_from([char + name, name + char]))
    if kind == "long":
        return (name * (limit // len(name) + 2))[: draw(st.integers(limit + 1, limit + 20))]
    return ""


NAME_RULES = {
    "function": (function_name_error, _is_function_name, function_names, _spoiled(function_names, "AZ_.:/@ \n\t", "-", 63)),
    "secret": (secret_name_error, _is_secret_name, secret_names, _spoiled(secret_names, ":/@+ \n\t", "-_.", 50)),
}
_name_soup = st.text(alphabet=st.one_of(st.sampled_from(string.ascii_letters + string.digits + "-_. "), st.characters()),
                     max_size=70)


@pytest.mark.parametrize("kind", NAME_RULES)
@given(data=st.data())
def test_every_valid_name_is_accepted(kind, data):
    error_of, _, valid, _ = NAME_RULES[kind]
    assert error_of(data.draw(valid)) is None


@pytest.mark.parametrize("kind", NAME_RULES)
@given(data=st.data())
def test_invalid_names_are_refused_with_a_message_quoting_them(kind, data):
    error_of, oracle, _, spoiled = NAME_RULES[kind]
    name = data.draw(spoiled)
    assert not oracle(name)
    error = error_of(name)
    assert error is not None and repr(name) in error


@pytest.mark.parametrize("kind", NAME_RULES)
@given(data=st.data())
def test_name_checks_agree_with_the_written_rule(kind, data):
    error_of, oracle, valid, spoiled = NAME_RULES[kind]
    name = data.draw(st.one_of(valid, spoiled, _name_soup))
    assert (error_of(name) is None) == oracle(name)
