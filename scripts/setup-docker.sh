#!/usr/bin/env bash
# Make this machine a single-node Swarm manager: install Debian's docker.io when dockerd is
# missing, start dockerd when it is not answering, and initialise Swarm when it is inactive.
# Safe to run again: every step checks first. Needs root on a fresh machine.
set -euo pipefail

log() { echo "setup-docker: $*" >&2; }
. "$(dirname "$0")/apt.sh"

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from Debian"
  apt_install docker.io
fi

if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker
  else
    # No init system here (containers, CI sandboxes): run the daemon ourselves.
    log "starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/dockerd.log"; exit 1; }
fi

if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
  # Loopback keeps a single-node Swarm off the machine's real interfaces.
  log "initialising Swarm"
  docker swarm init --advertise-addr "${SWARM_ADVERTISE_ADDR:-127.0.0.1}" >/dev/null
fi
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != "true" ]; then
  log "this node is in a Swarm but is not a manager"; exit 1
fi
log "Docker $(docker version --format '{{.Server.Version}}') is a Swarm manager"
