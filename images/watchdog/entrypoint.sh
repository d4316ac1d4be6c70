#!/bin/sh
# Container PID 1 of both test images: the log helpers tests rely on, then the watchdog.
#
# On SIGTERM either watchdog waits healthcheck_interval (write_timeout by default) twice
# before it exits, so every scale-down would take until Swarm's SIGKILL 10 s later. Tests of
# the gateway scale down all the time and test nothing of that drain, so this shell traps
# TERM/INT and exits, which tears down the whole container at once. (PID 1 gets no default
# signal handlers: without the trap, docker stop would wait for the SIGKILL too.)
# With drain=1 (the tests of draining replicas) the watchdog gets the SIGTERM instead, and the
# container ends when it does: it drains as it would as PID 1 of a real function image.
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

/usr/bin/fwatchdog &
watchdog=$!
pids="$pids $watchdog"
if [ -n "${drain:-}" ]; then
	trap 'kill -TERM "$watchdog" 2>/dev/null' TERM INT
fi

# `wait` returns early when a trapped signal arrives, so the trap runs promptly; while the
# watchdog drains, wait again.
wait "$watchdog"
rc=$?
while kill -0 "$watchdog" 2>/dev/null; do
	wait "$watchdog"
	rc=$?
done
kill $pids 2>/dev/null
exit "$rc"
