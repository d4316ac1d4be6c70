#!/bin/bash
# Build the websocket test function: images/websocket/echo.py, a server of its own on :8080 that
# echoes websocket messages, on the gateway's image (the one image with Python this repository
# builds offline; `make up` builds it), without the gateway's health check.
#
#   build.sh [BASE_IMAGE [IMAGE]]   default faas-swarm-py/gateway:latest -> faas-test/websocket-echo:latest
set -euo pipefail
base=${1:-faas-swarm-py/gateway:latest}
image=${2:-faas-test/websocket-echo:latest}
here=$(cd "$(dirname "$0")" && pwd)
docker build --quiet --tag "$image" --file - "$here" >/dev/null <<DOCKERFILE
FROM $base
COPY echo.py /srv/echo.py
HEALTHCHECK NONE
CMD ["python3", "/srv/echo.py"]
DOCKERFILE
echo "$image"
