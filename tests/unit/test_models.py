"""ScalingPolicy (app.domain.models): the scaling labels read or refused by name, their defaults,
and the replica counts a policy allows."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.domain.models import (
    DEFAULT_SCALE_MAX,
    LABEL_SCALE_FACTOR,
    LABEL_SCALE_MAX,
    LABEL_SCALE_MIN,
    LABEL_SCALE_ZERO,
    MAX_REPLICAS,
    ScalingPolicy,
)
from tests.unit.helpers import DEFAULT, FIXED, ZERO


def test_scaling_policy_defaults_and_rules():
    policy = ScalingPolicy.from_labels({})
    assert (policy.minimum, policy.maximum, policy.factor, policy.zero, policy.max_is_set) == (1, 20, 20, False, False)
    assert policy.initial_replicas() == 1
    assert policy.replicas_after_update(5) == 5
    assert policy.replicas_after_update(0) == 1
    assert policy.manual_scale(0) == 0 and policy.manual_scale(50) == 50
    capped = ScalingPolicy.from_labels({"com.openfaas.scale.max": "4", "com.openfaas.scale.min": "2"})
    assert capped.manual_scale(9) == 4 and capped.replicas_after_update(9) == 4 and capped.initial_replicas() == 2
    assert ScalingPolicy.from_labels({"com.openfaas.scale.min": "0"}).initial_replicas() == 1


@given(st.integers(1, 1000).flatmap(lambda maximum: st.tuples(st.integers(0, maximum), st.just(maximum))), st.integers(0, 1000))
def test_update_keeps_replicas_within_policy(bounds, current):
    minimum, maximum = bounds
    policy = ScalingPolicy.from_labels({"com.openfaas.scale.min": str(minimum), "com.openfaas.scale.max": str(maximum)})
    replicas = policy.replicas_after_update(current)
    assert minimum <= replicas <= maximum
    if minimum <= current <= maximum:
        assert replicas == current


@pytest.mark.parametrize("labels, load, replicas", [
    ({}, 0, 1),  # no load: the minimum, at least one
    ({}, 4.5, 1),  # 5 calls/s x 0.9 per replica
    ({}, 4.51, 2),
    ({}, 10, 3),
    ({}, 1000, 20),  # the default maximum
    ({"com.openfaas.scale.max": "2"}, 10, 2),
    ({"com.openfaas.scale.min": "4"}, 1, 4),
    ({"com.openfaas.scale.min": "0"}, 0, 1),  # load-based, so never zero: idleness is
    ({"com.openfaas.scale.target-proportion": "1"}, 10, 2),
    ({"com.openfaas.scale.target-proportion": "0.5"}, 10, 4),
    ({"com.openfaas.scale.target": "50"}, 100, 3),
    ({"com.openfaas.scale.type": "capacity"}, 9, 1),  # 10 in flight x 0.9
    ({"com.openfaas.scale.type": "capacity"}, 9.5, 2),
    ({"com.openfaas.scale.type": "cpu"}, 720, 1),  # 800 millicores x 0.9
    ({"com.openfaas.scale.type": "cpu"}, 1500, 3),
    ({"com.openfaas.scale.type": "cpu", "com.openfaas.scale.target": "100"}, 1500, 17),
])
def test_replicas_for_load(labels, load, replicas):
    assert ScalingPolicy.from_labels(labels).replicas_for(load) == replicas


@pytest.mark.parametrize("label, value", [
    ("com.openfaas.scale.type", "memory"),
    ("com.openfaas.scale.target", "0"),
    ("com.openfaas.scale.target", "-5"),
    ("com.openfaas.scale.target", "lots"),
    ("com.openfaas.scale.target", "inf"),
    ("com.openfaas.scale.target-proportion", "0"),
    ("com.openfaas.scale.target-proportion", "1.5"),
    ("com.openfaas.scale.target-proportion", "nan"),
    ("com.openfaas.scale.zero-duration", "soon"),
    ("com.openfaas.scale.zero-duration", "-1m"),
])
def test_unusable_labels_are_refused_by_name(label, value):
    with pytest.raises(ValueError, match=label.replace(".", r"\.")):
        ScalingPolicy.from_labels({label: value})


def test_label_defaults_follow_the_type():
    assert (DEFAULT.kind, DEFAULT.target, DEFAULT.target_proportion, DEFAULT.zero_duration) == ("rps", 5, 0.9, 900)
    assert ScalingPolicy.from_labels({"com.openfaas.scale.type": "capacity"}).target == 10
    assert ScalingPolicy.from_labels({"com.openfaas.scale.type": "CPU"}).target == 800
    assert ZERO.zero and ZERO.zero_duration == 60
    assert not FIXED.autoscaled and DEFAULT.autoscaled


@given(st.integers(1, MAX_REPLICAS - 1), st.integers(1, MAX_REPLICAS - 1))
def test_minimum_above_maximum_is_refused_naming_both_labels(maximum, gap):
    minimum = min(maximum + gap, MAX_REPLICAS)
    with pytest.raises(ValueError, match=re.escape(LABEL_SCALE_MIN)) as caught:
        ScalingPolicy.from_labels({LABEL_SCALE_MIN: str(minimum), LABEL_SCALE_MAX: str(maximum)})
    assert LABEL_SCALE_MAX in str(caught.value)


# The range of each whole-number label, and the default maximum a lone minimum must not exceed.
_LABEL_RANGES = {LABEL_SCALE_MIN: (0, DEFAULT_SCALE_MAX), LABEL_SCALE_MAX: (1, MAX_REPLICAS), LABEL_SCALE_FACTOR: (0, 100)}


def _good_scale_label(label: str, text: str) -> bool:
    """The labels' rule as CONTRACT.md words it: a whole number in range, or true/false."""
    bare = text.strip()
    if label == LABEL_SCALE_ZERO:
        return bare.lower() in ("true", "false")
    low, high = _LABEL_RANGES[label]
    return 0 < len(bare) <= 9 and all(char in string.digits for char in bare) and low <= int(bare) <= high


_scale_label_texts = st.one_of(
    st.text(alphabet=st.one_of(st.sampled_from("0123456789 +-²①٣"), st.characters()), max_size=6),
    st.builds("{}{}{}".format, st.sampled_from(["", " ", "\t"]), st.integers(-5, MAX_REPLICAS + 5), st.sampled_from(["", " "])),
    st.sampled_from(["true", "false", " TRUE", "False ", "yes", "1", "0"]),
)


# A bad scale label is a ValueError naming the label, also for "²" (isdigit() but not int()) and huge digit runs;
# a good one is read.
@given(st.sampled_from([LABEL_SCALE_MIN, LABEL_SCALE_MAX, LABEL_SCALE_FACTOR, LABEL_SCALE_ZERO]), _scale_label_texts)
@example(LABEL_SCALE_MAX, "²")
@example(LABEL_SCALE_FACTOR, "1" * 5000)
@example(LABEL_SCALE_MIN, "21")
@example(LABEL_SCALE_MAX, " 7 ")
def test_scaling_labels_are_read_or_refused_naming_the_label(label, text):
    if _good_scale_label(label, text):
        ScalingPolicy.from_labels({label: text})
    else:
        with pytest.raises(ValueError, match=re.escape(label)):
            ScalingPolicy.from_labels({label: text})
