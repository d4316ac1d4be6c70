"""Alert-driven scaling: the replica count an Alertmanager alert asks for.

The rule is the OpenFaaS gateway's, so that alert rules written for OpenFaaS scale a function here
exactly as they would there. It is a pure function; ``app.blueprints.alert`` applies it.
"""

from __future__ import annotations

import math

from app.models import ScalingPolicy

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
