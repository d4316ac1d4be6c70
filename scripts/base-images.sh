#!/usr/bin/env bash
# Choose the base images the stack is built on and print them as KEY=value lines.
#
# The default python image (the official one) is used when it is present or can be pulled. Where
# no registry is reachable, an equivalent image is built from Debian's packages: debootstrap into
# a folder, then `docker import`. Such images are built once and reused, without trying the
# registry again (a pull that cannot succeed still takes seconds). nginx's image is always built
# so: its routing table and call counts are Lua modules (deploy/nginx-routes.lua,
# deploy/nginx-calls.lua), and Debian's Lua module is built for Debian's nginx, not the official
# image's. PYTHON_IMAGE or NGINX_IMAGE set in the environment
# always win (an nginx image given so needs the same modules).
#
# With --cluster (scripts/cluster.sh) it also prints NODE_IMAGE, the image of a Docker-in-Docker
# node (Debian's docker.io, and docker-registry for the cluster's registry), and REDIS_IMAGE,
# always built from Debian's packages.
#
# Only the KEY=value lines go to stdout, which `make up` writes into its env file; everything
# else (progress, and apt's or debootstrap's output when they fail) goes to stderr.
set -euo pipefail
exec 3>&1 1>&2

DEFAULT_PYTHON=python:3.11-slim
LOCAL_PYTHON=faas-swarm/python:bookworm
# nginx with Debian's Lua module (libnginx-mod-http-lua), and curl: deploy/nginx-routes.sh fetches
# the routing table with it.
LOCAL_NGINX=faas-swarm/nginx:bookworm-lua
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { echo "base-images: $*" >&2; }
. "$(dirname "$0")/apt.sh"

present() { docker image inspect "$1" >/dev/null 2>&1; }

# build_local IMAGE CMD PACKAGES: a minimal Debian root filesystem with PACKAGES, imported as IMAGE,
# built in the background (`built` waits for all of them): debootstrap fetches one package at a
# time, so the images of a fresh machine download side by side rather than one after another.
building=()
build_local() {
  docker image inspect "$1" >/dev/null 2>&1 && return
  command -v debootstrap >/dev/null 2>&1 || { log "installing debootstrap from Debian"; apt_install debootstrap; }
  debootstrap_import "$@" &
  building+=("$!")
}

built() {
  local pid
  for pid in "${building[@]}"; do wait "$pid"; done
  building=()
}

debootstrap_import() {
  local image=$1 cmd=$2 packages=$3 root
  root=$(mktemp -d)
  trap 'rm -rf "$root" "$root.log"' RETURN
  log "building $image from Debian packages ($packages)"
  debootstrap --variant=minbase --include="$packages" bookworm "$root" "$MIRROR" >"$root.log" 2>&1 \
    || { cat "$root.log" >&2; return 1; }
  # Package caches and documentation have no place in a base image.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar -C "$root" -c . | docker import --change "CMD $cmd" - "$image" >/dev/null
}

# choose DEFAULT LOCAL CMD PACKAGES: sets $chosen to DEFAULT when this machine has it, else to
# LOCAL when built before, else to DEFAULT when it can be pulled, else to LOCAL, built now.
choose() {
  local default=$1 local=$2
  if present "$default"; then chosen=$default
  elif present "$local"; then chosen=$local
  elif timeout 60 docker pull -q "$default" >/dev/null 2>&1; then chosen=$default
  else build_local "$local" "$3" "$4"; chosen=$local
  fi
}

python_image=${PYTHON_IMAGE:-}
if [ -z "$python_image" ]; then
  choose "$DEFAULT_PYTHON" "$LOCAL_PYTHON" '["python3"]' python3,python3-venv,ca-certificates
  python_image=$chosen
fi

nginx_image=${NGINX_IMAGE:-}
if [ -z "$nginx_image" ]; then
  # Logs go to the container's output, as in the official image.
  build_local "$LOCAL_NGINX" '["nginx", "-g", "daemon off; error_log /dev/stderr;"]' nginx,libnginx-mod-http-lua,curl
  nginx_image=$LOCAL_NGINX
fi

if [ "${1:-}" = "--cluster" ]; then
  NODE_IMAGE=faas-swarm/node:bookworm
  REDIS_IMAGE=faas-swarm/redis:bookworm
  # pigz: dockerd unpacks pulled layers with it, on every core. The entrypoint comes from deploy/cluster/node-entrypoint.sh, mounted when a node starts.
  build_local "$NODE_IMAGE" '["dockerd"]' docker.io,docker-registry,pigz,iptables,iproute2,procps,ca-certificates
  build_local "$REDIS_IMAGE" '["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "yes", "--dir", "/data"]' redis-server
fi
built

echo "PYTHON_IMAGE=$python_image" >&3
echo "NGINX_IMAGE=$nginx_image" >&3
if [ "${1:-}" = "--cluster" ]; then
  echo "NODE_IMAGE=$NODE_IMAGE" >&3
  echo "REDIS_IMAGE=$REDIS_IMAGE" >&3
fi
