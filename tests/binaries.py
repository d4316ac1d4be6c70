"""Where the suite finds the real OpenFaaS binaries (faas-cli, fwatchdog, of-watchdog, faas-swarm).

They cannot be committed, so they live in one folder outside the repository: ``$OPENFAAS_BIN_DIR``,
by default ``../shared/bin`` beside the repository (a relative value is taken from the repository
root, as images/watchdog/build.sh and bench/common.py take it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VARIABLE = "OPENFAAS_BIN_DIR"
DEFAULT = "../shared/bin"
HOW = 'docs/testing.md, "Getting the OpenFaaS binaries", says where to get them'


def bin_dir() -> Path:
    """The folder of the OpenFaaS binaries, absolute (not checked)."""
    return Path(os.path.normpath(ROOT / (os.environ.get(VARIABLE) or DEFAULT)))


def openfaas_binary(name: str) -> Path:
    """The executable ``name`` in :func:`bin_dir`; the test fails, naming the setting, when it is missing."""
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: the real OpenFaaS binaries are read from ${VARIABLE} (default {DEFAULT} "
                    f"beside the repository); {HOW}", pytrace=False)
    return path
