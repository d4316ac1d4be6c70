#!/bin/sh
# nginx's entry point: keep the routing table the gateway renders (app/routes.py, GET /_/routes)
# in /etc/nginx/routes.conf, and reload nginx whenever it changes.
#
# nginx starts once the first table is in: its pools name the gateway, which must resolve. Then
# every second the table is fetched again; the gateway's own address is part of what is
# compared, because nginx resolves the pools' and the call log's names only when it loads its
# configuration. A table nginx refuses (`nginx -t`) is not installed: the running one stays.
#
# The table holds every namespace's task addresses, so the gateway asks for its basic-auth
# credentials (app/auth.py): the same secrets are mounted here (docker-compose.yml). They reach
# curl in its configuration on stdin, never as arguments, which every process on the host can read.
set -u

gateway=${GATEWAY_HOST:-gateway}
url="http://$gateway:8080/_/routes"
routes=/etc/nginx/routes.conf
secrets=/run/secrets

# Absent secrets (a gateway with basic_auth=false): no credentials sent.
authorization=
if [ -r "$secrets/basic-auth-user" ] && [ -r "$secrets/basic-auth-password" ]; then
  authorization=$(printf '%s:%s' "$(cat "$secrets/basic-auth-user")" "$(cat "$secrets/basic-auth-password")" \
    | base64 | tr -d '\n')
fi

curl_config() {
  [ -z "$authorization" ] || printf 'header = "Authorization: Basic %s"\n' "$authorization"
}

fetch() {
  curl_config | curl -fsS --max-time 2 -K - -o "$1" "$url" 2>/dev/null || return 1
  echo "# gateway at $(getent ahostsv4 "$gateway" | awk '{print $1}' | sort -u | tr '\n' ' ')" >>"$1"
}

until fetch "$routes"; do
  echo "routes: waiting for $url" >&2
  sleep 1
done

nginx -g 'daemon off;' &
nginx_pid=$!
# docker stop sends TERM: nginx's fast shutdown, as when nginx is the container's process.
trap 'kill -TERM "$nginx_pid" 2>/dev/null' TERM INT
trap 'kill -QUIT "$nginx_pid" 2>/dev/null' QUIT

while kill -0 "$nginx_pid" 2>/dev/null; do
  sleep 1
  if fetch "$routes.new" && ! cmp -s "$routes.new" "$routes"; then
    cp "$routes" "$routes.old"
    mv "$routes.new" "$routes"
    if nginx -t -q; then
      kill -HUP "$nginx_pid"
    else
      echo "routes: nginx refused the new table; keeping the running one" >&2
      mv "$routes.old" "$routes"
    fi
  fi
done
wait "$nginx_pid"
