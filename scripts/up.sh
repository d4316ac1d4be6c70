#!/usr/bin/env bash
# `make up`: take a Debian machine (as root) to a running gateway behind nginx.
#
# Installs and starts Docker and Swarm when needed, creates basic-auth credentials once (random,
# mode 0600, in .credentials/, never committed), chooses or builds base images, prepares the
# offline wheelhouse, creates the functions network, builds and starts the stack with
# docker-compose, waits for /healthz through nginx and prints how to log in. Running it again
# changes nothing that is already right, and never touches existing credentials.
# Progress goes to stderr, one `up:` line a step; the summary to stdout. No warning is expected:
# one printed is a fault to fix here, not noise.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "up: $*" >&2; }
. scripts/apt.sh

bash scripts/setup-docker.sh
if ! command -v docker-compose >/dev/null 2>&1; then
  log "installing docker-compose from Debian"
  apt_install docker-compose
fi

GATEWAY_UID=${GATEWAY_UID:-10001}
ENV_FILE=${ENV_FILE:-.env}
COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-openfaas}
CREDENTIALS_DIR=${CREDENTIALS_DIR:-$PWD/.credentials}
FUNCTIONS_NETWORK=${FUNCTIONS_NETWORK:-func_functions}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
# nginx's files, bind-mounted: a running container keeps the ones it started with (a checkout
# replaces a file, the mount holds the old one), so their digest is a label of the container,
# and docker-compose starts nginx again when it changes.
NGINX_FILES="deploy/nginx.conf deploy/nginx-routes.sh deploy/nginx-routes.lua deploy/nginx-calls.lua"

bash scripts/credentials.sh "$CREDENTIALS_DIR" "$GATEWAY_UID"
bash scripts/wheels.sh

# The attachable overlay functions and the gateway share; the gateway would create it, but
# compose needs it before the gateway starts.
docker network inspect "$FUNCTIONS_NETWORK" >/dev/null 2>&1 \
  || docker network create --driver overlay --attachable --label openfaas=true "$FUNCTIONS_NETWORK" >/dev/null

# Everything docker-compose (and a later `make down`) needs, in one env file: KEY=value lines
# only (base-images.sh prints nothing else on stdout), or docker-compose cannot parse it.
log "choosing the base images"
{
  echo "COMPOSE_PROJECT_NAME=$COMPOSE_PROJECT_NAME"
  bash scripts/base-images.sh
  echo "PIP_NO_INDEX=1"
  echo "GATEWAY_UID=$GATEWAY_UID"
  echo "DOCKER_GID=$(stat -c %g /var/run/docker.sock)"
  echo "CREDENTIALS_DIR=$CREDENTIALS_DIR"
  echo "FUNCTIONS_NETWORK=$FUNCTIONS_NETWORK"
  echo "GATEWAY_PORT=$GATEWAY_PORT"
  echo "GIT_SHA=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "NGINX_FILES=$(cat $NGINX_FILES | sha256sum | cut -c1-16)"
} >"$ENV_FILE.new"
mv "$ENV_FILE.new" "$ENV_FILE"

# COMPOSE_DOCKER_CLI_BUILD=0: docker-compose builds through the Engine API, the same classic
# builder the docker CLI would run, without the CLI's notice that it is deprecated.
compose() {
  COMPOSE_DOCKER_CLI_BUILD=0 docker-compose --env-file "$ENV_FILE" --project-name "$COMPOSE_PROJECT_NAME" "$@"
}
log "building the gateway image"
compose build --quiet gateway
log "starting the stack (compose project $COMPOSE_PROJECT_NAME)"
# docker-compose warns on every `up` against a Swarm-mode engine that it runs containers on this
# node only; that is this stack's design (Swarm runs the functions), so that one paragraph, and
# its blank lines, are left out of what it prints. pipefail keeps its exit status.
compose up -d --remove-orphans 2>&1 \
  | awk '/running in swarm mode/ {skip = 1} !skip && NF {print; fflush()} /use `docker stack deploy`/ {skip = 0}' >&2

url="http://127.0.0.1:$GATEWAY_PORT"
log "waiting for $url/healthz"
for _ in $(seq 1 120); do
  if python3 -c "import urllib.request, sys; urllib.request.urlopen('$url/healthz', timeout=2)" 2>/dev/null; then
    user=$(cat "$CREDENTIALS_DIR/basic-auth-user")
    cat <<INFO
The gateway is up.
  URL:      $url
  user:     $user
  password: in $CREDENTIALS_DIR/basic-auth-password
  log in:   cat $CREDENTIALS_DIR/basic-auth-password | faas-cli login --gateway $url --username $user --password-stdin
INFO
    exit 0
  fi
  sleep 1
done
log "the gateway did not answer on $url/healthz; docker-compose logs:"
compose logs --tail 50 >&2
exit 1
