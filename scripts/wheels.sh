#!/usr/bin/env bash
# Download the gateway image's wheels into wheelhouse/, so the image builds without a network
# (Dockerfile, PIP_NO_INDEX=1). Used by `make up` and `make cluster`.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "wheels: $*" >&2; }
. scripts/apt.sh

# A bare Debian has python3 without pip.
if ! python3 -m pip --version >/dev/null 2>&1; then
  log "installing pip from Debian"
  apt_install python3-pip
fi

# Wheels for the image (CPython 3.11 on glibc >= 2.28, as both base images are), downloaded on
# the host so the build needs no network. pip judges environment markers by the host's Python,
# so async-timeout, which redis needs only before 3.11.3 (Debian's is 3.11.2), is named here.
# -qq: pip's warnings here are about the host's own pip configuration (an extra index it cannot
# read, say), not about make up; its errors still show, and stop make up.
log "downloading the gateway's wheels into wheelhouse/"
python3 -m pip download -qq --dest wheelhouse --only-binary=:all: --python-version 3.11 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
  setuptools wheel async-timeout $(python3 scripts/requirements.py)

