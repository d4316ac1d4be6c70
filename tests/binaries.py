"""Where the suite finds the real OpenFaaS binaries (faas-cli, fwatchdog, of-watchdog, faas-swarm):
``harness.openfaas_binary``, with a missing one a failed test that names the setting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import harness


def openfaas_binary(name: str) -> Path:
    """The executable ``name``; the test fails, naming the setting, when it is missing."""
    try:
        return harness.openfaas_binary(name)
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
