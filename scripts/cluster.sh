#!/usr/bin/env bash
# `make cluster` / `make cluster-down`: a real 3-node Swarm on this one machine (docs/cluster.md).
#
#   cluster.sh up     three Docker-in-Docker nodes (all managers), a registry they pull from, and
#                     this stack deployed across them with `docker stack deploy`
#   cluster.sh down   removes every container, volume and network `up` made; nothing else
#
# Every Docker object `up` makes on this machine carries the label com.openfaas.cluster=$CLUSTER,
# which is how `down` finds them. The nodes are containers on a bridge network of their own:
# `faas-cluster-node-N` (host name node-N) and the registry `faas-cluster-registry` (alias
# `registry`). Images go from this machine's Docker to the registry through its loopback port and
# the nodes pull them as registry:5000/...; the registry keeps its storage in $CLUSTER_DIR/registry
# across clusters, as the credentials stay in $CLUSTER_DIR/credentials (remove the folder to
# start afresh); the stack file is read inside node-1, where the
# repository is mounted read-only at its own path (nginx's configuration is bind-mounted from it).
# Progress goes to stderr, one `cluster:` line a step; the summary to stdout, as `make up`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

CLUSTER=${CLUSTER:-faas-cluster}
NODES=${CLUSTER_NODES:-3}
CLUSTER_PORT=${CLUSTER_PORT:-8180}
REGISTRY_PORT=${CLUSTER_REGISTRY_PORT:-5005}
STACK=${CLUSTER_STACK:-faas}
CLUSTER_DIR=${CLUSTER_DIR:-$repo/.cluster}
CREDENTIALS_DIR=$CLUSTER_DIR/credentials
GATEWAY_UID=${GATEWAY_UID:-10001}
LABEL=com.openfaas.cluster=$CLUSTER

log() { echo "cluster: [$SECONDS s $(date +%T)] $*" >&2; }
node() { echo "$CLUSTER-node-$1"; }
on() { local n=$1; shift; docker exec "$(node "$n")" "$@"; }

# answers URL: whether URL answers 2xx (this machine may have no curl).
answers() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"; }

# wait_for SECONDS WHAT COMMAND...: run COMMAND every half second until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then log "timed out waiting for $what"; return 1; fi
    sleep 0.5
  done
}

down() {
  local containers volumes
  containers=$(docker ps -aq --filter "label=$LABEL")
  # The nodes' anonymous volumes (their /var/lib/docker) go with them (-v).
  [ -z "$containers" ] || docker rm -fv $containers >/dev/null
  volumes=$(docker volume ls -q --filter "label=$LABEL")
  [ -z "$volumes" ] || docker volume rm $volumes >/dev/null
  docker network ls -q --filter "label=$LABEL" | xargs -r docker network rm >/dev/null
  log "removed cluster $CLUSTER"
}

# start_node N [DOCKER RUN OPTIONS]: a Docker-in-Docker node (deploy/cluster/node-entrypoint.sh
# says why each option). Only node-1 publishes a port: nginx's, on the host's loopback.
start_node() {
  local n=$1
  shift
  docker run -d --name "$(node "$n")" --hostname "node-$n" --network "$CLUSTER" --label "$LABEL" \
    --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
    --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
    --device-cgroup-rule 'a *:* rwm' --cgroupns private --volume /var/lib/docker \
    --volume "$repo:$repo:ro" --entrypoint "$repo/deploy/cluster/node-entrypoint.sh" \
    "$@" "$NODE_IMAGE" >/dev/null
}

# push IMAGE NAME: IMAGE from this machine's Docker into the registry as NAME (with its tag).
push() {
  docker tag "$1" "127.0.0.1:$REGISTRY_PORT/$2"
  docker push -q "127.0.0.1:$REGISTRY_PORT/$2" >/dev/null
  docker rmi "127.0.0.1:$REGISTRY_PORT/$2" >/dev/null
}

up() {
  bash scripts/setup-docker.sh
  command -v docker-compose >/dev/null 2>&1 || { log "installing docker-compose from Debian"; bash scripts/apt.sh docker-compose; }
  bash scripts/credentials.sh "$CREDENTIALS_DIR" "$GATEWAY_UID"
  (umask 077; [ -s "$CREDENTIALS_DIR/agent-token" ] || python3 -c 'import secrets; print(secrets.token_urlsafe(32), end="")' >"$CREDENTIALS_DIR/agent-token")
  chown "$GATEWAY_UID" "$CREDENTIALS_DIR/agent-token"
  bash scripts/wheels.sh

  log "choosing the base images"
  eval "$(bash scripts/base-images.sh --cluster)"
  down 2>/dev/null
  log "starting the registry and $NODES nodes"
  docker network create --label "$LABEL" "$CLUSTER" >/dev/null
  # The registry's storage outlives the cluster: the next `up` pushes only the layers that changed.
  mkdir -p "$CLUSTER_DIR/registry"
  docker run -d --name "$CLUSTER-registry" --network "$CLUSTER" --network-alias registry --label "$LABEL" \
    --volume "$CLUSTER_DIR/registry:/var/lib/docker-registry" --publish "127.0.0.1:$REGISTRY_PORT:5000" \
    --volume "$repo/deploy/cluster/registry.yml:/etc/docker/registry/config.yml:ro" \
    --entrypoint docker-registry "$NODE_IMAGE" serve /etc/docker/registry/config.yml >/dev/null
  start_node 1 --publish "127.0.0.1:$CLUSTER_PORT:8080"
  for n in $(seq 2 "$NODES"); do start_node "$n"; done

  # The images build while the nodes' dockerd start.
  log "building the gateway image"
  COMPOSE_DOCKER_CLI_BUILD=0 CREDENTIALS_DIR=$CREDENTIALS_DIR PYTHON_IMAGE=$PYTHON_IMAGE PIP_NO_INDEX=1 GATEWAY_UID=$GATEWAY_UID \
    GIT_SHA=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
    docker-compose --project-name "$STACK" build --quiet gateway
  [ -n "$(docker images -q faas-test/classic-watchdog:latest)" ] || bash images/watchdog/build.sh

  # Images by content, so a changed gateway is a changed image for Swarm.
  local gateway_tag images=()
  gateway_tag=$(docker images -q faas-swarm-py/gateway:latest)
  wait_for 30 "the registry" answers "http://127.0.0.1:$REGISTRY_PORT/v2/"
  log "pushing the images to the cluster's registry"
  push faas-swarm-py/gateway:latest "faas-swarm-py/gateway:$gateway_tag" &
  images+=($!)
  push "$NGINX_IMAGE" faas-swarm/nginx:stable & images+=($!)
  push "$REDIS_IMAGE" faas-swarm/redis:stable & images+=($!)
  push faas-test/classic-watchdog:latest faas-test/classic-watchdog:latest & images+=($!)
  push faas-test/of-watchdog:latest faas-test/of-watchdog:latest & images+=($!)
  for pid in "${images[@]}"; do wait "$pid"; done

  for n in $(seq 1 "$NODES"); do wait_for 60 "dockerd on node-$n" on "$n" docker info; done
  # The nodes pull the stack's images while the Swarm forms (every node runs an agent, node-1 also
  # nginx and Redis), rather than when its tasks are first scheduled.
  local pulls=()
  for n in $(seq 1 "$NODES"); do on "$n" docker pull -q "registry:5000/faas-swarm-py/gateway:$gateway_tag" >/dev/null & pulls+=($!); done
  for image in faas-swarm/nginx:stable faas-swarm/redis:stable; do on 1 docker pull -q "registry:5000/$image" >/dev/null & pulls+=($!); done
  log "forming the Swarm"
  local address token
  address=$(on 1 hostname -i | awk '{print $1}')
  # A 1 s heartbeat: a lost node is Down in about 2 s instead of 15.
  on 1 docker swarm init --advertise-addr "$address" --dispatcher-heartbeat 1s >/dev/null
  token=$(on 1 docker swarm join-token -q manager)
  for n in $(seq 2 "$NODES"); do on "$n" docker swarm join --token "$token" "$address:2377" >/dev/null; done
  # nginx serves on node-1, whose port the host reaches; the two gateways on node-1 and node-2.
  on 1 docker node update --label-add faas.entry=true node-1 >/dev/null
  on 1 docker node update --label-add faas.gateway=true node-1 >/dev/null
  on 1 docker node update --label-add faas.gateway=true node-2 >/dev/null
  on 1 docker network create --driver overlay --attachable --label openfaas=true func_functions >/dev/null

  for pid in "${pulls[@]}"; do wait "$pid"; done
  log "deploying stack $STACK"
  # The stack's settings a person (or a test) gave this machine's environment, for the nodes'.
  local settings=()
  for var in READ_TIMEOUT WRITE_TIMEOUT UPSTREAM_TIMEOUT ASYNC_CLAIM_TIMEOUT LOG_LEVEL AUTOSCALER \
    AUTOSCALER_INTERVAL AUTOSCALER_STABILIZATION SERIES_INTERVAL GATEWAY_WORKERS GRACEFUL_TIMEOUT; do
    [ -z "${!var:-}" ] || settings+=("$var=${!var}")
  done
  on 1 env "${settings[@]}" GATEWAY_IMAGE="registry:5000/faas-swarm-py/gateway:$gateway_tag" \
    NGINX_IMAGE=registry:5000/faas-swarm/nginx:stable REDIS_IMAGE=registry:5000/faas-swarm/redis:stable \
    GATEWAY_UID="$GATEWAY_UID" DOCKER_GID="$(on 1 stat -c %g /var/run/docker.sock)" \
    CREDENTIALS_DIR="$CREDENTIALS_DIR" COMPOSE_PROJECT_NAME="$STACK" FUNCTIONS_NETWORK=func_functions \
    docker stack deploy --resolve-image never -c "$repo/docker-compose.yml" -c "$repo/deploy/stack.yml" \
    -c "$repo/deploy/cluster/stack.yml" "$STACK" 2>&1 | grep -v -e '^Ignoring unsupported options' -e '^Creating' >&2 || true

  local url=http://127.0.0.1:$CLUSTER_PORT
  log "waiting for $url/healthz"
  wait_for 150 "$url/healthz" answers "$url/healthz" || { on 1 docker service ls >&2; exit 1; }
  # Every service at its replicas (the agents on every node), not only the entry.
  converged() { on 1 docker service ls --format '{{.Replicas}}' | awk '{split($1, r, "/"); if (r[1] != r[2]) exit 1}'; }
  wait_for 60 "every service's replicas" converged || { on 1 docker service ls >&2; exit 1; }
  for n in $(seq 1 "$NODES"); do
    echo "node: node-$n $(node "$n") $(on 1 docker node inspect --format '{{.Spec.Role}}' "node-$n")"
  done
  cat <<INFO
The cluster is up.
  URL:      $url
  user:     $(cat "$CREDENTIALS_DIR/basic-auth-user")
  password: in $CREDENTIALS_DIR/basic-auth-password
  log in:   cat $CREDENTIALS_DIR/basic-auth-password | faas-cli login --gateway $url --username admin --password-stdin
  images:   registry:5000/faas-test/classic-watchdog:latest and of-watchdog:latest for test functions
  docker:   docker exec $(node 1) docker service ls
INFO
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
