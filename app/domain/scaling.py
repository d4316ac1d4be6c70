"""The scaling rules, as pure functions: the replica count an Alertmanager alert asks for, and
the built-in autoscaler's decision for one function.

The alert rule is the OpenFaaS gateway's, so that alert rules written for OpenFaaS scale a
function here exactly as they would there; ``app.web.blueprints.alert`` applies it. The autoscaler's
rule follows OpenFaaS Pro's labels (``ScalingPolicy``) with a stabilization window on the way
down; ``app.background.autoscaler`` measures the load and applies it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from app.domain.models import ScalingPolicy

FIRING = "firing"
RESOLVED = "resolved"


def alert_target(status: str, current: int, policy: ScalingPolicy) -> int:
    """The replicas a function with ``current`` replicas should have after an alert with ``status``.

    A firing alert adds a step of ``ceil(maximum / 100 * factor)`` replicas, capped at the maximum;
    a resolved alert, or a factor of 0 (alert scaling switched off), means the minimum. The step
    is computed in floating point in exactly that order, as OpenFaaS does: 28 / 100 * 25 is
    7.000000000000001, so that step is 8. A firing alert does not raise a count below the minimum
    to the minimum; it adds one step, as the contract's rule says.
    """
    step = math.ceil(policy.maximum / 100 * policy.factor)
    if status == FIRING and step > 0:
        return min(current + step, policy.maximum)
    return policy.minimum


@dataclass(frozen=True)
class Decision:
    """What the autoscaler does with one function this round: ``replicas`` (the current count
    when nothing changes), ``reason`` (empty when nothing changes), and ``settled``, the
    stabilized load-based count to remember for the next round."""

    replicas: int
    reason: str = ""
    settled: int | None = None


def autoscale(
    policy: ScalingPolicy,
    current: int,
    wanted: Sequence[int],
    window: float,
    watched: float,
    settled: int | None,
    idle: float,
) -> Decision:
    """The autoscaler's rule for one function this round.

    ``wanted`` holds ``policy.replicas_for(load)`` of each round within the stabilization
    ``window`` (seconds), oldest first, this round's last; ``watched`` is how long the function
    has been watched, ``settled`` what this rule returned as ``settled`` last round (None at
    first sight), ``idle`` the seconds since the function last had a call or woke up.

    - A function at 0 replicas is asleep: left alone, a call wakes it (scale from zero).
    - min == max switches autoscaling off: nothing is changed.
    - ``scale.zero`` and idle for ``zero_duration``: to 0.
    - Outside [max(1, min), max] (e.g. after a label change): back inside at once.
    - Load asks for more than there are: up at once.
    - Down only to the largest count asked for during the whole window, and only when that
      count has fallen since the last round: replicas set by hand stay until the load changes.
    """
    if current == 0 or not policy.autoscaled:
        return Decision(current, settled=settled)
    if policy.zero and idle >= policy.zero_duration:
        return Decision(0, f"idle for {idle:.0f}s (zero-duration {policy.zero_duration:g}s)")
    low = max(1, policy.minimum)
    if not low <= current <= policy.maximum:
        bounded = min(max(current, low), policy.maximum)
        return Decision(bounded, f"outside min {policy.minimum} and max {policy.maximum}", settled=settled)
    if wanted[-1] > current:
        return Decision(wanted[-1], "load above target", settled=wanted[-1])
    if watched < window:
        return Decision(current, settled=settled)  # not watched for a whole window yet
    stable = max(wanted)
    if settled is not None and stable < settled and stable < current:
        return Decision(stable, f"load below target for {window:g}s", settled=stable)
    return Decision(current, settled=stable)
