"""Numbers read from a function's labels, each checked with an error that names the label: what
the scaling labels (app.domain.models) and the probe labels (app.domain.probes) share."""

from __future__ import annotations

import math
import re

from app.config import parse_duration


def label_number(labels: dict[str, str], name: str, default: float, high: float, zero: bool = False) -> float:
    """The number label ``name`` holds (``default`` when absent): above 0, or 0 too when ``zero``,
    and at most ``high``. Raises ValueError naming the label."""
    text = labels.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 <= value if zero else 0 < value) or not value <= high:  # also refuses nan and inf
        floor = "from 0" if zero else "above 0"
        raise ValueError(f"label {name} must be a number {floor} and at most {high:g}, not {text!r}")
    return value


def label_duration(labels: dict[str, str], name: str, default: float) -> float:
    """The duration label ``name`` holds in seconds (``60``, ``1m30s``). Raises ValueError naming it."""
    text = labels.get(name)
    if text is None:
        return default
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"label {name}: {exc}") from None


def label_int(labels: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    """The whole number label ``name`` holds, from ``low`` to ``high``. Raises ValueError naming it."""
    text = labels.get(name)
    if text is None:
        return default
    # ASCII digits only, and few of them: str.isdigit() also takes "²", and int() refuses huge runs.
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()) or not low <= int(text) <= high:
        raise ValueError(f"label {name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)
