#!/bin/sh
# nginx's entry point: keep nginx routing function calls with what the gateway renders
# (app/dataplane/route_table.py), asked for a second after each answer and sent only when it
# changed (ETag); the gateway holds the request for an unchanged table a few seconds, answering
# as soon as it changes:
# - the routing table (GET /_/routes/table): each function's ready tasks. When it changed, it is
#   loaded into nginx's shared memory (deploy/nginx-routes.lua, on 127.0.0.1:8081), without a
#   reload: a reload would close every idle kept-alive client connection, and a call sent on one
#   at that moment would be lost. A table nginx refuses is logged with nginx's reason and tried
#   again with the next fetch; the running one stays.
# - the rest of nginx's configuration it renders (GET /_/routes), in /etc/nginx/routes.conf. It
#   changes only with the gateway's settings or address, and nginx reloads then: nginx resolves
#   the gateway's name only when it loads its configuration, so the addresses it resolves to are
#   part of what is compared, looked up again when the gateway answers from another one. A
#   configuration nginx refuses (`nginx -t`) is not installed.
#
# nginx starts once the first configuration is in: its pools name the gateway, which must resolve.
# Until the first table is loaded, every call goes to the gateway, which routes it itself.
#
# The table holds every namespace's task addresses, so the gateway asks for its basic-auth
# credentials (app/web/auth.py): the same secrets are mounted here (docker-compose.yml). They reach
# curl in its configuration on stdin, never as arguments, which every process on the host can read.
#
# Each change is logged on stderr with what changed, e.g.
#   routes: loaded the table: ~ fn_echo (2 tasks: +10.0.1.7 -10.0.1.5), + fn_new (1 task), - fn_old
#   routes: reloading nginx: gateway 10.0.0.5 -> 10.0.0.9
# and a failing fetch or load once, and again when it recovers.
# POSIX sh with what the nginx image has (Debian's coreutils, mawk, curl).
set -u

gateway=${GATEWAY_HOST:-gateway}
url="http://$gateway:8080/_/routes"
# All overridable for tests (tests/unit/test_nginx_routes.py).
routes=${ROUTES_FILE:-/etc/nginx/routes.conf}
table=${TABLE_FILE:-/etc/nginx/routes.table}
loader=${LOADER_URL:-http://127.0.0.1:8081/routes}
secrets=${SECRETS_DIR:-/run/secrets}

# Absent secrets (a gateway with basic_auth=false): no credentials sent.
credentials=
if [ -r "$secrets/basic-auth-user" ] && [ -r "$secrets/basic-auth-password" ]; then
  credentials="header = \"Authorization: Basic $(printf '%s:%s' "$(cat "$secrets/basic-auth-user")" \
    "$(cat "$secrets/basic-auth-password")" | base64 | tr -d '\n')\""
fi

# Seconds the gateway may hold the request for an unchanged table, answering as soon as it changes
# (app/web/blueprints/routing.py): a curl every few seconds, not every second, and a new table
# here when the gateway sees it.
wait=${ROUTES_WAIT:-5}
# The ETags (without their quotes) of the table nginx took and of the gateway's configuration
# document last weighed: sent as If-None-Match, so an unchanged document is a 304 with no body.
table_tag= config_tag=
# The addresses the gateway's name resolved to in the configuration nginx runs with.
gateway_addresses=
problem= problem_url=
# fetch: both documents, over one connection of one curl, each only if it changed: this runs
# all the time, and each process it starts costs more CPU than the documents do. Sets
# table_status and config_status (200: the new document is in $table.new or $routes.doc.new, its
# ETag in new_table_tag or new_config_tag; 304: unchanged) and gateway_ip, the address curl
# reached the gateway at. A failure is logged once, with curl's reason, and so is the recovery.
fetch() {
  answers=$(curl -K - <<EOF
$credentials
url = "$url/table"
output = "$table.new"
header = "If-None-Match: \"$table_tag\""
header = "Prefer: wait=$wait"
fail
silent
max-time = $((wait + 2))
write-out = "$url/table|%{exitcode}|%{http_code}|%header{etag}|%{remote_ip}|%{errormsg}\n"
next
$credentials
url = "$url"
output = "$routes.doc.new"
header = "If-None-Match: \"$config_tag\""
fail
silent
max-time = 2
write-out = "$url|%{exitcode}|%{http_code}|%header{etag}|%{remote_ip}|%{errormsg}\n"
EOF
)
  failed= failed_url= table_status= config_status=
  while IFS='|' read -r address code status tag ip message; do
    tag=${tag#\"} tag=${tag%\"}
    if [ -z "$address" ]; then
      continue
    elif [ "$code" != 0 ]; then
      [ -n "$failed" ] || failed="curl: ($code) $message" failed_url=$address
    elif [ "$address" = "$url/table" ]; then
      table_status=$status new_table_tag=$tag
    else
      config_status=$status new_config_tag=$tag gateway_ip=$ip
    fi
  done <<EOF
$answers
EOF
  # curl ended before reporting both (killed, say): a failure too.
  [ -n "$failed" ] || { [ -n "$table_status" ] && [ -n "$config_status" ]; } \
    || failed="curl: ended without an answer" failed_url=$url
  if [ -n "$failed" ]; then
    [ "$failed_url: $failed" = "$problem_url: $problem" ] || echo "routes: cannot fetch $failed_url: $failed" >&2
    problem=$failed problem_url=$failed_url
    return 1
  fi
  [ -z "$problem" ] || echo "routes: $problem_url answers again" >&2
  problem= problem_url=
}

# gateway_moved: whether the gateway answered from an address the configuration nginx runs with
# does not name: it was replaced, and its name may resolve to other addresses now.
gateway_moved() {
  case " $gateway_addresses " in *" $gateway_ip "*) return 1 ;; esac
}

# compose FILE: nginx's configuration: the gateway's document and the addresses its name resolves
# to now (in $resolved), as nginx resolves the name only when it loads its configuration.
compose() {
  resolved=$(getent ahostsv4 "$gateway" | awk '{print $1}' | sort -u | tr '\n' ' ')
  { cat "$routes.doc"; echo "# gateway at $resolved"; } >"$1"
}

refusal=
# load FILE: the table into nginx's shared memory; nginx answers 204, or 400 with its reason.
load() {
  status=$(curl -sS --max-time 2 --data-binary "@$1" -o "$1.answer" -w '%{http_code}' "$loader" 2>"$1.error")
  if [ "$status" != 204 ]; then
    error=$(cat "$1.answer" "$1.error" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//')
    [ "$error" = "$refusal" ] || echo "routes: nginx did not take the table (HTTP $status): $error" >&2
    refusal=$error
    return 1
  fi
  refusal=
}

# What changed from file $1 to file $2, on one line: the table's pools added (+, with their task
# count), removed (-) or with other tasks (~, the addresses that came and went); the gateway's
# address; and "other lines" for anything else (timeouts, the gateway's pool).
changes() {
  awk '
    { side = FILENAME == ARGV[1] ? 1 : 2 }
    /^# gateway at / { gateway[side] = substr($0, 14); sub(/ +$/, "", gateway[side]); next }
    /^#/ || /^name / { next }
    /^pool fn_/ {
      pool = $2; tasks[side, pool] = " "
      if (!(pool in seen)) { seen[pool] = 1; order[++pools] = pool }
      for (i = 3; i <= NF; i++) {
        address = $i; sub(/:[0-9]+$/, "", address)
        tasks[side, pool] = tasks[side, pool] address " "; count[side, pool]++
      }
      next
    }
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
      # Not at the start (nothing before); and whatever else made the files differ.
      if (other[1] != "" && other[1] != other[2]) add("other lines")
      if (out == "") add("no function")
      print out
    }
  ' "$1" "$2"
}

# nginx starts once the gateway's configuration is in: its pools name the gateway, which must
# resolve. The table fetched with it is loaded in the next round, once nginx runs.
until fetch && [ "$config_status" = 200 ]; do
  sleep 1
done
mv "$routes.doc.new" "$routes.doc"
config_tag=$new_config_tag
compose "$routes"
gateway_addresses=$resolved
echo "routes: starting nginx: $(changes /dev/null "$routes")" >&2

nginx -g 'daemon off;' &
nginx_pid=$!
# docker stop sends TERM: nginx's fast shutdown, as when nginx is the container's process.
trap 'kill -TERM "$nginx_pid" 2>/dev/null' TERM INT
trap 'kill -QUIT "$nginx_pid" 2>/dev/null' QUIT

# No table loaded yet: the first fetch loads whatever it gets.
: >"$table"
while kill -0 "$nginx_pid" 2>/dev/null; do
  sleep 1
  fetch || continue
  # A table nginx refused keeps the previous ETag: it comes again, and is tried again.
  if [ "$table_status" = 200 ] && load "$table.new"; then
    echo "routes: loaded the table: $(changes "$table" "$table.new")" >&2
    mv "$table.new" "$table"
    table_tag=$new_table_tag
  fi
  if [ "$config_status" = 200 ]; then
    mv "$routes.doc.new" "$routes.doc"
    config_tag=$new_config_tag
  elif ! gateway_moved; then
    continue
  fi
  # A configuration nginx refused is not tried again, nor logged again, until it changes.
  compose "$routes.new"
  if ! cmp -s "$routes.new" "$routes" && ! cmp -s "$routes.new" "$routes.refused"; then
    changed=$(changes "$routes" "$routes.new")
    cp "$routes" "$routes.old"
    mv "$routes.new" "$routes"
    if nginx -t -q; then
      echo "routes: reloading nginx: $changed" >&2
      gateway_addresses=$resolved
      kill -HUP "$nginx_pid"
    else
      mv "$routes" "$routes.refused"
      mv "$routes.old" "$routes"
      echo "routes: nginx refused the new configuration ($changed); keeping the running one" >&2
    fi
  fi
done
wait "$nginx_pid"
