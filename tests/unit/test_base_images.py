"""scripts/base-images.sh on a fresh machine: no base image present, no registry, no debootstrap.

Its standard output becomes `make up`'s env file, so it must hold the KEY=value lines and nothing
else, even while apt installs debootstrap and the images are built. Stand-ins for docker,
apt-get and debootstrap record the path the script takes; no image is built or removed.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

from harness import ROOT

# No image is present and none can be pulled; `docker import` reads its tar and names the image.
DOCKER = """#!/bin/sh
case "$1 $2" in
  "image inspect") exit 1 ;;
  pull*) echo "Error response from daemon: no route to the registry" >&2; exit 1 ;;
  import*) cat >/dev/null; echo "sha256:0123456789abcdef"; echo "import $*" >>"$STUB_LOG" ;;
  *) echo "unexpected: docker $*" >&2; exit 2 ;;
esac
"""
# Prints what apt prints, and installs the debootstrap stand-in.
APT_GET = """#!/bin/sh
echo "Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]"
echo "Reading package lists..."
if [ "$1" = install ]; then cp "$STUB_DIR/debootstrap.stub" "$STUB_DIR/debootstrap"; fi
"""
DEBOOTSTRAP = """#!/bin/sh
echo "I: Retrieving InRelease"
# debootstrap [OPTION...] SUITE TARGET MIRROR: TARGET is the script's own temporary folder.
while [ $# -gt 2 ]; do shift; done
test -d "$1"
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_a_fresh_machine_gets_only_key_value_lines_on_stdout(tmp_path):
    stubs = tmp_path / "bin"
    stubs.mkdir()
    _executable(stubs / "docker", DOCKER)
    _executable(stubs / "apt-get", APT_GET)
    _executable(stubs / "debootstrap.stub", DEBOOTSTRAP)
    log = tmp_path / "calls.log"
    # The system folders hold the shell and coreutils; debootstrap itself lives in /usr/sbin,
    # left out so the script has to install it.
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHON_IMAGE", "NGINX_IMAGE")}
    env.update(PATH=f"{stubs}:/usr/bin:/bin", STUB_DIR=str(stubs), STUB_LOG=str(log), TMPDIR=str(tmp_path))
    done = subprocess.run(["bash", str(ROOT / "scripts/base-images.sh")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["PYTHON_IMAGE=faas-swarm/python:bookworm", "NGINX_IMAGE=faas-swarm/nginx:bookworm-lua"]
    # apt's output went to a log (scripts/apt.sh), removed since the install succeeded.
    assert "Get:1 http://deb.debian.org" not in done.stderr
    assert not list(tmp_path.glob("apt-install.*"))
    # The two are built side by side: either may be imported first.
    imported = re.findall(r"import .* - (\S+)", log.read_text())
    assert sorted(imported) == ["faas-swarm/nginx:bookworm-lua", "faas-swarm/python:bookworm"]
