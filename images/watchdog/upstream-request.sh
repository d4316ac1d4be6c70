#!/bin/sh
# The of-watchdog image's upstream, one HTTP request per process: busybox `nc -ll -e` forks this
# script for each connection the watchdog opens, with the socket on stdin/stdout (stderr goes
# to the watchdog, which logs it). It gives the handler what the classic watchdog gives
# fprocess, so one handler runs on either image: the body on stdin, the request method, path,
# query and headers as Http_* variables. Exit 0 is a 200 with the handler's output; anything
# else is a 500 with its output and errors. Content-Type is $content_type or text/plain.

cr=$(printf '\r')
tmp=$(mktemp -d /tmp/up.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

# Read exactly N bytes from the socket. Not `head -c`: it reads through stdio
# buffers and would swallow the bytes that follow (e.g. the next chunk header);
# dd with fullblock+count_bytes never reads past N.
read_n() {
	[ "$1" -gt 0 ] || return 0
	dd bs=65536 count="$1" iflag=count_bytes,fullblock status=none
}

read -r method target _ || exit 0
path=${target%%\?*}
query=
case $target in *\?*) query=${target#*\?} ;; esac

# Collect headers until the blank line. The watchdog (Go) sends canonical names
# (X-Call-Id); like the classic watchdog, Http_ + the name with "-" made "_".
while IFS= read -r line; do
	line=${line%"$cr"}
	[ -n "$line" ] || break
	printf '%s\n' "$line"
done > "$tmp/headers"
awk '{
	i = index($0, ":"); if (i < 2) next
	name = substr($0, 1, i - 1); value = substr($0, i + 1)
	gsub(/^[ \t]+|[ \t]+$/, "", value)
	gsub(/[^A-Za-z0-9]/, "_", name)
	print "Http_" name "=" value
}' "$tmp/headers" > "$tmp/env"
# `export "$l"` assigns the whole word; nothing from the client is ever eval'd.
while IFS= read -r l; do export "$l"; done < "$tmp/env"
export Http_Method="$method" Http_Path="$path"
# The classic watchdog sets Http_Query only when there is a query.
[ -z "$query" ] || export Http_Query="$query"
echo "request $method $path" >&2

[ "${Http_Expect:-}" = 100-continue ] && printf 'HTTP/1.1 100 Continue\r\n\r\n'

case ${Http_Transfer_Encoding:-} in
*chunked*)
	# Each chunk: "<hex size>[;ext]\r\n<data>\r\n"; a 0-size chunk ends the
	# body, followed by optional trailers and a blank line.
	while IFS= read -r size; do
		size=${size%"$cr"}; size=${size%%;*}
		n=$((0x$size))
		[ "$n" -eq 0 ] && break
		read_n "$n" || exit 1
		read -r _
	done > "$tmp/body"
	while IFS= read -r line && [ -n "${line%"$cr"}" ]; do :; done
	;;
*)
	read_n "${Http_Content_Length:-0}" > "$tmp/body"
	;;
esac

if run-handler < "$tmp/body" > "$tmp/out" 2> "$tmp/err"; then
	status="200 OK"
else
	status="500 Internal Server Error"
	cat "$tmp/err" >> "$tmp/out"
fi

len=$(($(wc -c < "$tmp/out")))
printf 'HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' \
	"$status" "${content_type:-text/plain}" "$len"
[ "$method" = HEAD ] || cat "$tmp/out"
