"""POST /system/alert: Alertmanager's webhook, scaling functions up while an alert fires.

Each alert names a function in its ``function_name`` label (``name`` or ``name.namespace``); the
new replica count comes from ``app.domain.scaling.alert_target`` and the function's scaling labels.
Alerts are handled one by one, so one that fails does not stop the others: unknown functions are
skipped (the alert may outlive the function, or name another gateway's namespace), and every
failure is collected and reported at the end as a 500 listing one ``function: reason`` line each.
"""

from __future__ import annotations

import logging
from collections import Counter

from flask import Blueprint, request

from app.domain.models import ScalingPolicy
from app.domain.names import split_reference
from app.domain.scaling import alert_target
from app.errors import AlertFailed, GatewayError, NotFound
from app.web.handlers import text_response
from app.web.schemas import AlertWebhookSchema, load_body
from app.web.state import functions, own_function

log = logging.getLogger(__name__)
bp = Blueprint("alert", __name__)

SCALED, UNCHANGED, SKIPPED = "scaled", "unchanged", "skipped"
_WEBHOOK = AlertWebhookSchema()


@bp.post("/system/alert")
def handle_alert():
    """Act on every alert; 200 when all were handled, 400 for a bad body (nothing is done then),
    500 (AlertFailed) listing the alerts that failed after the others were acted on."""
    alerts = load_body(_WEBHOOK, request)["alerts"]
    outcomes: Counter[str] = Counter()
    failures = []
    for alert in alerts:
        function = alert["labels"]["function_name"]
        try:
            outcomes[_apply(alert["status"], function)] += 1
        except (GatewayError, ValueError) as exc:
            failures.append(f"{function}: {exc}")
    if failures:
        raise AlertFailed(failures, len(alerts))
    return text_response(
        f"Alerts handled: {len(alerts)} ({outcomes[SCALED]} scaled, {outcomes[UNCHANGED]} unchanged, "
        f"{outcomes[SKIPPED]} skipped as unknown functions).",
        200,
    )


def _apply(status: str, function: str) -> str:
    """Scale the function an alert names; return SCALED, UNCHANGED or SKIPPED (unknown function).

    Raises ValueError for scaling labels that cannot be read, and the runtime's GatewayError
    when the orchestrator fails.
    """
    reference = own_function(function)
    if reference is None:
        # No function can have this name (e.g. OpenFaaS's "func_nodeinfo" example).
        return SKIPPED
    name, namespace = split_reference(reference)
    try:
        current = functions().get_function(name, namespace)
        target = alert_target(status, current.replicas, ScalingPolicy.from_labels(current.labels))
        if target == current.replicas:
            return UNCHANGED
        log.info("alert %s for function %s: scaling from %d to %d replicas", status, reference, current.replicas, target)
        functions().scale(name, target, namespace)
    except NotFound:
        # Also when the function is removed between the read and the scale, or its namespace
        # is not one of this gateway's.
        return SKIPPED
    return SCALED
