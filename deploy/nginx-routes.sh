#!/bin/sh
# nginx's entry point: keep the routing table the gateway renders (app/dataplane/route_table.py, GET /_/routes)
# in /etc/nginx/routes.conf, and reload nginx whenever it changes.
#
# nginx starts once the first table is in: its pools name the gateway, which must resolve. Then
# every second the table is fetched again; the gateway's own address is part of what is
# compared, because nginx resolves the pools' and the call log's names only when it loads its
# configuration. A table nginx refuses (`nginx -t`) is not installed: the running one stays.
#
# The table holds every namespace's task addresses, so the gateway asks for its basic-auth
# credentials (app/web/auth.py): the same secrets are mounted here (docker-compose.yml). They reach
# curl in its configuration on stdin, never as arguments, which every process on the host can read.
#
# Each reload is logged on stderr with what changed, e.g.
#   routes: reloading nginx: ~ fn_echo (2 tasks: +10.0.1.7 -10.0.1.5), + fn_new (1 task), - fn_old
# as is the gateway's address changing, and a failing fetch (once, and again when it recovers).
# POSIX sh with what both nginx images have (Debian's coreutils, mawk, curl).
set -u

gateway=${GATEWAY_HOST:-gateway}
url="http://$gateway:8080/_/routes"
# Both overridable for tests (tests/unit/test_nginx_routes.py).
routes=${ROUTES_FILE:-/etc/nginx/routes.conf}
secrets=${SECRETS_DIR:-/run/secrets}

# Absent secrets (a gateway with basic_auth=false): no credentials sent.
authorization=
if [ -r "$secrets/basic-auth-user" ] && [ -r "$secrets/basic-auth-password" ]; then
  authorization=$(printf '%s:%s' "$(cat "$secrets/basic-auth-user")" "$(cat "$secrets/basic-auth-password")" \
    | base64 | tr -d '\n')
fi

curl_config() {
  [ -z "$authorization" ] || printf 'header = "Authorization: Basic %s"\n' "$authorization"
}

problem=
fetch() {
  if ! error=$(curl_config | curl -fsS --max-time 2 -K - -o "$1" "$url" 2>&1); then
    [ "$error" = "$problem" ] || echo "routes: cannot fetch $url: $error" >&2
    problem=$error
    return 1
  fi
  [ -z "$problem" ] || echo "routes: $url answers again" >&2
  problem=
  echo "# gateway at $(getent ahostsv4 "$gateway" | awk '{print $1}' | sort -u | tr '\n' ' ')" >>"$1"
}

# What changed from table $1 to table $2, on one line: pools added (+, with their task count),
# removed (-) or with other tasks (~, the addresses that came and went), the gateway's address,
# and "other lines" for anything else (timeouts, the fallback pool).
changes() {
  awk '
    { side = FILENAME == ARGV[1] ? 1 : 2 }
    /^# gateway at / { gateway[side] = substr($0, 14); sub(/ +$/, "", gateway[side]); next }
    /^upstream fn_/ {
      pool = $2; tasks[side, pool] = " "
      if (!(pool in seen)) { seen[pool] = 1; order[++pools] = pool }
      next
    }
    pool != "" && $1 == "server" {
      address = $2; sub(/:[0-9]+$/, "", address)
      tasks[side, pool] = tasks[side, pool] address " "; count[side, pool]++
      next
    }
    pool != "" { if ($1 == "}") pool = ""; next }
    # The map follows the pools.
    $2 ~ /^fn_/ { next }
    { other[side] = other[side] $0 "\n" }
    function add(text) { out = out (out == "" ? "" : ", ") text }
    function plural(n) { return n + 0 " task" (n == 1 ? "" : "s") }
    END {
      for (i = 1; i <= pools; i++) {
        pool = order[i]; old = tasks[1, pool]; new = tasks[2, pool]
        if (old == new) continue
        if (old == "") { add("+ " pool " (" plural(count[2, pool]) ")"); continue }
        if (new == "") { add("- " pool); continue }
        moved = ""
        n = split(new, list, " ")
        for (j = 1; j <= n; j++) if (!index(old, " " list[j] " ")) moved = moved " +" list[j]
        n = split(old, list, " ")
        for (j = 1; j <= n; j++) if (!index(new, " " list[j] " ")) moved = moved " -" list[j]
        add("~ " pool " (" plural(count[2, pool]) ":" (moved == "" ? " same addresses" : moved) ")")
      }
      if (gateway[1] != gateway[2])
        add(gateway[1] == "" ? "gateway at " gateway[2] : "gateway " gateway[1] " -> " gateway[2])
      # Not at the start (no old table); and whatever else made the tables differ.
      if ((other[1] != "" && other[1] != other[2]) || out == "") add("other lines")
      print out
    }
  ' "$1" "$2"
}

until fetch "$routes"; do
  sleep 1
done
echo "routes: starting nginx: $(changes /dev/null "$routes")" >&2

nginx -g 'daemon off;' &
nginx_pid=$!
# docker stop sends TERM: nginx's fast shutdown, as when nginx is the container's process.
trap 'kill -TERM "$nginx_pid" 2>/dev/null' TERM INT
trap 'kill -QUIT "$nginx_pid" 2>/dev/null' QUIT

while kill -0 "$nginx_pid" 2>/dev/null; do
  sleep 1
  if fetch "$routes.new" && ! cmp -s "$routes.new" "$routes"; then
    changed=$(changes "$routes" "$routes.new")
    cp "$routes" "$routes.old"
    mv "$routes.new" "$routes"
    if nginx -t -q; then
      echo "routes: reloading nginx: $changed" >&2
      kill -HUP "$nginx_pid"
    else
      mv "$routes.old" "$routes"
      echo "routes: nginx refused the new table ($changed); keeping the running one" >&2
    fi
  fi
done
wait "$nginx_pid"
