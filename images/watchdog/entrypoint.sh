#!/bin/sh
# Container PID 1. The kernel drops signals to PID 1 that have no handler, so
# nc cannot be PID 1 itself (docker stop would hang for 10 s); this shell traps
# TERM/INT and exits, which tears down the whole container at once.
pids=
trap 'kill $pids 2>/dev/null; exit 0' TERM INT

if [ -n "${log_burst:-}" ]; then
	# A known backlog of lines for log tests and benchmarks.
	seq 1 "$log_burst" | sed 's/^/burst /'
fi
if [ -n "${log_long_line:-}" ]; then
	# One line longer than Docker's 16 KiB log buffer, which Docker splits into pieces.
	head -c "$log_long_line" /dev/zero | tr '\0' x
	echo
fi

if [ -n "${log_interval:-}" ]; then
	# Steady stdout for log-streaming tests.
	( n=0; while :; do n=$((n + 1)); echo "tick $n"; sleep "$log_interval"; done ) &
	pids=$!
fi

# -ll: keep listening and fork one handler per connection (concurrent requests).
busybox nc -ll -p 8080 -e /handler.sh &
nc_pid=$!
pids="$pids $nc_pid"

# `wait` returns early when a trapped signal arrives, so the trap runs promptly.
wait "$nc_pid"
rc=$?
kill $pids 2>/dev/null
exit "$rc"
