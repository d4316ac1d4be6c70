#!/usr/bin/env bash
# Install Debian packages quietly, waiting for another apt or dpkg run instead of failing.
#
#   bash scripts/apt.sh PACKAGE...     (from the Makefile)
#   . scripts/apt.sh; apt_install PACKAGE...   (from the scripts)
#
# Runs `apt-get update`, then `apt-get install -y PACKAGE...`, non-interactively (needrestart
# included). apt's output goes to a log file in /tmp, not to the terminal: it is removed when
# the install succeeds, and printed (and kept) when it fails.
#
# When another apt or dpkg run holds one of their locks (/var/lib/dpkg/lock-frontend,
# /var/lib/dpkg/lock, /var/lib/apt/lists/lock, ...), says so once on stderr and waits for it, up
# to APT_LOCK_TIMEOUT seconds (default 300) for the whole install. apt-get waits for the dpkg
# locks itself (DPkg::Lock::Timeout); bookworm's `apt-get update` ignores that option and fails
# at once on the lists lock, so a run that fails on a lock is tried again, a second later, until
# the time is up.

APT_LOCK_TIMEOUT=${APT_LOCK_TIMEOUT:-300}

# _apt_get DEADLINE LOG COMMAND ARG...: one apt-get command, its output appended to LOG,
# tried again while it fails on a lock and DEADLINE (in $SECONDS) is not reached.
_apt_get() {
  local deadline=$1 log=$2 start said status
  shift 2
  while :; do
    start=$(wc -l <"$log")
    said=0
    grep -q 'Could not get lock' "$log" && said=1
    # apt says "Waiting for cache lock: Could not get lock PATH. It is held by ..." each second
    # while it waits, or "E: Could not get lock ..." when it gives up: the first one is said.
    if DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a NEEDRESTART_SUSPEND=1 \
      apt-get "$@" -q -o DPkg::Lock::Timeout=$((deadline - SECONDS)) 2>&1 </dev/null \
      | awk -v out="$log" -v said="$said" -v wait="$APT_LOCK_TIMEOUT" '
          { print >>out; fflush(out) }
          !said && /Could not get lock/ {
            said = 1
            sub(/^(E: |Waiting for cache lock: )/, ""); sub(/\.\.\.$/, "")
            printf "apt: waiting (up to %d s) for another apt or dpkg run: %s (apt output: %s)\n", wait, $0, out > "/dev/stderr"
          }'
    then
      status=("${PIPESTATUS[@]}")
    else
      status=("${PIPESTATUS[@]}")
    fi
    # Whatever the caller's pipefail: apt-get's status, or 1 when only the logging failed.
    [ "${status[0]}${status[1]}" = 00 ] && return 0
    [ "${status[0]}" -ne 0 ] || status[0]=1
    if [ "$SECONDS" -ge "$deadline" ] || ! tail -n "+$((start + 1))" "$log" | grep -q '^E: Could not get lock'; then
      return "${status[0]}"
    fi
    sleep 1
  done
}

# apt_install PACKAGE...: install PACKAGE... from Debian; prints nothing unless it waits or fails.
apt_install() {
  local log deadline=$((SECONDS + APT_LOCK_TIMEOUT))
  [ $# -gt 0 ] || return 0
  log=$(mktemp "${TMPDIR:-/tmp}/apt-install.XXXXXX.log")
  if _apt_get "$deadline" "$log" update && _apt_get "$deadline" "$log" install -y "$@"; then
    rm -f "$log"
    return 0
  fi
  echo "apt: installing $* failed; apt's output (kept in $log):" >&2
  cat "$log" >&2
  return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  apt_install "$@"
fi
