"""The scaling rules (app.domain.scaling): the alert rule against the contract's vectors and its
formula, and the autoscaler's decision as a table."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.domain.models import LABEL_SCALE_FACTOR, LABEL_SCALE_MAX, LABEL_SCALE_MIN, MAX_REPLICAS, ScalingPolicy
from app.domain.scaling import alert_target, autoscale
from tests.unit.helpers import DEFAULT, FIXED, MIN1_MAX2, VECTORS, ZERO


@pytest.mark.parametrize("status, current, maximum, minimum, factor, new", VECTORS)
def test_contract_vectors_of_the_rule(status, current, maximum, minimum, factor, new):
    assert alert_target(status, current, ScalingPolicy(minimum, maximum, factor)) == new


_policies = st.builds(
    lambda low, high, factor: ScalingPolicy(min(low, high), max(low, high), factor),
    st.integers(0, 1000),
    st.integers(1, 1000),
    st.integers(0, 100),
)


@given(st.sampled_from(["firing", "resolved"]), st.integers(0, 1000), _policies)
def test_the_target_never_exceeds_the_maximum(status, current, policy):
    assert alert_target(status, current, policy) <= policy.maximum


@given(st.sampled_from(["firing", "resolved"]), st.data(), _policies)
def test_from_within_the_range_the_target_stays_within_it(status, data, policy):
    current = data.draw(st.integers(policy.minimum, policy.maximum))
    assert policy.minimum <= alert_target(status, current, policy) <= policy.maximum


@given(st.data(), _policies)
def test_firing_never_scales_down_within_the_range(data, policy):
    current = data.draw(st.integers(policy.minimum, policy.maximum))
    target = alert_target("firing", current, policy)
    if policy.factor > 0:
        assert target > current or target == policy.maximum
    else:
        assert target == policy.minimum


@given(st.integers(0, 1000), _policies)
def test_resolved_always_means_the_minimum(current, policy):
    assert alert_target("resolved", current, policy) == policy.minimum


def _contract_new(status: str, current: int, maximum: int, minimum: int, factor: int) -> int:
    """CONTRACT.md, word for word: step = ceil(max / 100 * factor) in floating point."""
    step = math.ceil(float(maximum) / 100.0 * float(factor))
    if status == "firing" and step > 0:
        return min(current + step, maximum)
    return minimum


@st.composite
def _scaling(draw) -> tuple[int, int, int]:
    low, high = draw(st.integers(0, MAX_REPLICAS)), draw(st.integers(1, MAX_REPLICAS))
    return min(low, high), max(low, high), draw(st.integers(0, 100))


def _policy(minimum: int, maximum: int, factor: int) -> ScalingPolicy:
    # Blanks around a number are tolerated.
    labels = {LABEL_SCALE_MIN: str(minimum), LABEL_SCALE_MAX: f" {maximum} ", LABEL_SCALE_FACTOR: str(factor)}
    policy = ScalingPolicy.from_labels(labels)
    assert (policy.minimum, policy.maximum, policy.factor, policy.max_is_set) == (minimum, maximum, factor, True)
    return policy


@given(st.sampled_from(["firing", "resolved"]), st.integers(0, MAX_REPLICAS), _scaling())
@example("firing", 1, (1, 28, 25))  # 28 / 100 * 25 == 7.000000000000001: step 8, new 9.
def test_alert_target_is_the_contract_formula(status, current, scaling):
    minimum, maximum, factor = scaling
    expected = _contract_new(status, current, maximum, minimum, factor)
    assert alert_target(status, current, _policy(minimum, maximum, factor)) == expected


@given(st.sampled_from(["firing", "resolved"]), st.integers(0, MAX_REPLICAS), _scaling())
def test_alert_target_bounds(status, current, scaling):
    minimum, maximum, factor = scaling
    new = alert_target(status, current, _policy(minimum, maximum, factor))
    assert new <= maximum
    if status == "resolved" or factor == 0:
        assert new == minimum
    elif current < maximum:
        assert new > current  # Firing never scales down, and always moves below the maximum...
        assert new >= minimum or current < minimum  # ...but does not jump a count below the minimum to it.
    else:
        assert new == maximum


WINDOW = 30

# policy, current replicas, asked per round in the window (this round last), watched seconds,
# settled last round, idle seconds -> replicas, settled
RULE = {
    "up at once": (MIN1_MAX2, 1, [1, 2], 5, 1, 0, 2, 2),
    "up at once, before a whole window was watched": (DEFAULT, 1, [3], 0, None, 0, 3, 3),
    "steady": (MIN1_MAX2, 2, [2, 2, 2], 60, 2, 0, 2, 2),
    "down waits while the window still holds more": (MIN1_MAX2, 2, [2, 1, 1], 60, 2, 0, 2, 2),
    "down once the whole window asks for less": (MIN1_MAX2, 2, [1, 1, 1], 60, 2, 0, 1, 1),
    "down to the largest count of the window": (DEFAULT, 5, [3, 2, 2], 60, 5, 0, 3, 3),
    "no down before a whole window was watched": (DEFAULT, 3, [1, 1], 10, None, 0, 3, None),
    "first sight settles without scaling down": (DEFAULT, 5, [1, 1], 60, None, 0, 5, 1),
    "set by hand stays while the load is unchanged": (DEFAULT, 5, [1, 1], 60, 1, 0, 5, 1),
    "set by hand goes when the load falls": (DEFAULT, 5, [2, 2], 60, 3, 0, 2, 2),
    "set by hand below the load goes up": (DEFAULT, 1, [3], 60, 3, 0, 3, 3),
    "above the maximum comes down at once": (MIN1_MAX2, 4, [1], 0, None, 0, 2, None),
    "below the minimum goes up at once": (ScalingPolicy(minimum=3), 1, [3], 0, None, 0, 3, None),
    "asleep stays asleep": (DEFAULT, 0, [1], 60, 1, 0, 0, 1),
    "min == max is left alone under load": (FIXED, 3, [20], 60, 3, 0, 3, 3),
    "min == max is left alone even if set by hand": (FIXED, 1, [20], 60, 3, 0, 1, 3),
    "idle to zero": (ZERO, 2, [1, 1], 120, 1, 60, 0, None),
    "idle, not long enough": (ZERO, 1, [1, 1], 120, 1, 59, 1, 1),
    "idle without scale.zero stays": (DEFAULT, 1, [1], 10_000, 1, 10_000, 1, 1),
}


@pytest.mark.parametrize("case", RULE.values(), ids=RULE.keys())
def test_rule(case):
    policy, current, wanted, watched, settled, idle, replicas, new_settled = case
    decision = autoscale(policy, current, wanted, WINDOW, watched, settled, idle)
    assert (decision.replicas, decision.settled) == (replicas, new_settled)
    assert bool(decision.reason) == (replicas != current)
