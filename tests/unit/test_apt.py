"""scripts/apt.sh, the one place that installs Debian packages, against a stand-in apt-get.

The stand-in records its arguments and plays one of apt's answers; nothing is installed. Each
case checks what a person sees on the terminal: nothing on success, one line while another apt
run holds a lock, apt's whole output when the install fails.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from tests.gateway import ROOT

# LOCKED=N: the first N runs of `apt-get update` find the lists lock held, as bookworm's apt
# says it (update does not wait for it); MISSING=name: `apt-get install` does not know that package.
APT_GET = """#!/bin/sh
echo "$*" >>"$STUB_DIR/calls"
echo "env DEBIAN_FRONTEND=$DEBIAN_FRONTEND NEEDRESTART_MODE=$NEEDRESTART_MODE" >>"$STUB_DIR/calls"
if [ "$1" = update ]; then
  tries=$(cat "$STUB_DIR/locked" 2>/dev/null || echo 0)
  if [ "$tries" -lt "${LOCKED:-0}" ]; then
    echo $((tries + 1)) >"$STUB_DIR/locked"
    echo "Reading package lists..."
    echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)"
    echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
    exit 100
  fi
  echo "Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]"
  exit 0
fi
for name in "$@"; do
  if [ "$name" = "$MISSING" ]; then echo "E: Unable to locate package $name" >&2; exit 100; fi
done
echo "Setting up redis-server ..."
"""


def _apt(tmp_path: Path, *packages: str, **env: str) -> subprocess.CompletedProcess[str]:
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    (stubs / "apt-get").write_text(APT_GET)
    (stubs / "apt-get").chmod(stat.S_IRWXU)
    environ = os.environ | {"PATH": f"{stubs}:/usr/bin:/bin", "STUB_DIR": str(stubs), "TMPDIR": str(tmp_path)} | env
    return subprocess.run(["bash", str(ROOT / "scripts/apt.sh"), *packages], env=environ, capture_output=True,
                          text=True, timeout=60)


def _logs(tmp_path: Path) -> list[Path]:
    return list(tmp_path.glob("apt-install.*.log"))


def test_a_successful_install_prints_nothing_and_leaves_no_log(tmp_path):
    done = _apt(tmp_path, "redis-server")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not _logs(tmp_path)
    calls = (tmp_path / "bin/calls").read_text().splitlines()
    # update, then install, each waiting for dpkg's locks for at most the default 300 s, non-interactively.
    assert calls[0].startswith("update -q -o DPkg::Lock::Timeout=")
    assert calls[2].startswith("install -y redis-server -q -o DPkg::Lock::Timeout=")
    assert 290 <= int(calls[2].rsplit("=", 1)[1]) <= 300
    assert calls[1] == calls[3] == "env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a"


def test_a_held_lists_lock_is_waited_for_and_said_once(tmp_path):
    done = _apt(tmp_path, "redis-server", LOCKED="2")
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("apt: waiting (up to 300 s) for another apt or dpkg run: Could not get lock "
                           "/var/lib/apt/lists/lock. It is held by process 4242 (apt-get) (apt output: ")
    calls = (tmp_path / "bin/calls").read_text().splitlines()[::2]
    assert [call.split()[0] for call in calls] == ["update", "update", "update", "install"]


def test_the_wait_is_bounded(tmp_path):
    done = _apt(tmp_path, "redis-server", LOCKED="100", APT_LOCK_TIMEOUT="1")
    assert done.returncode != 0
    assert done.stderr.count("apt: waiting (up to 1 s)") == 1
    assert "E: Unable to lock directory /var/lib/apt/lists/" in done.stderr


def test_a_failed_install_prints_apts_output_and_keeps_it(tmp_path):
    done = _apt(tmp_path, "redis-server", "no-such-package", MISSING="no-such-package")
    assert done.returncode != 0
    (log,) = _logs(tmp_path)
    assert done.stderr.startswith(f"apt: installing redis-server no-such-package failed; apt's output (kept in {log}):\n")
    assert "Get:1 http://deb.debian.org" in done.stderr and "E: Unable to locate package no-such-package" in done.stderr
    assert log.read_text() in done.stderr
