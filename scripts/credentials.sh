#!/usr/bin/env bash
# Basic-auth credentials of a stack, made once and kept: credentials.sh DIR UID.
#
# DIR/basic-auth-user (admin) and DIR/basic-auth-password (random), mode 0600, owned by UID (the
# gateway's user, which docker-compose's bind-mounted secrets must belong to). Existing files are
# never changed. Used by `make up` and `make cluster`.
set -euo pipefail
log() { echo "credentials: $*" >&2; }
CREDENTIALS_DIR=$1
GATEWAY_UID=$2

(
  umask 077
  mkdir -p "$CREDENTIALS_DIR"
  [ -s "$CREDENTIALS_DIR/basic-auth-user" ] || printf admin >"$CREDENTIALS_DIR/basic-auth-user"
  if [ ! -s "$CREDENTIALS_DIR/basic-auth-password" ]; then
    log "generating a basic-auth password in $CREDENTIALS_DIR"
    python3 -c 'import secrets; print(secrets.token_urlsafe(24), end="")' >"$CREDENTIALS_DIR/basic-auth-password"
  fi
)
# docker-compose bind-mounts secret files as they are: the gateway's user must own them.
chown "$GATEWAY_UID" "$CREDENTIALS_DIR"/basic-auth-user "$CREDENTIALS_DIR"/basic-auth-password
chmod 600 "$CREDENTIALS_DIR"/basic-auth-user "$CREDENTIALS_DIR"/basic-auth-password

