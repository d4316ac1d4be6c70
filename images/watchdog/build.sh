#!/bin/bash
# Build the test function images offline on the real OpenFaaS watchdogs: a root filesystem of
# static busybox, the watchdog binary from $OPENFAAS_BIN_DIR (by default ../shared/bin, beside the
# repository) and a few scripts, imported straight into docker (no base image to pull, no registry
# needed).
#
#   build.sh                    both images under their default names
#   build.sh classic [IMAGE]    the classic watchdog (fwatchdog 0.3.0): forks fprocess per call
#   build.sh of-watchdog [IMAGE]  of-watchdog 0.9.15 in mode=http, in front of an upstream of
#                               ours: upstream.c, one long-lived HTTP/1.1 server keeping its
#                               connections alive, compiled here (gcc -static, no libc in the image)
#
# In both the function is a shell snippet in the `handler` environment variable, run with the
# body on stdin and the request as Http_* variables (see run-handler.sh and upstream.c); on
# of-watchdog, no handler or handler=cat is answered by the upstream itself, without forking.
# The binaries are copied or compiled into a temporary root filesystem only, never into git.
set -euo pipefail

CLASSIC_IMAGE=faas-test/classic-watchdog:latest
OF_WATCHDOG_IMAGE=faas-test/of-watchdog:latest

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# The real OpenFaaS binaries, which cannot be committed: CI clones the repository with shared/
# beside it, as on the development machines. A relative setting is taken from the repository root.
bin_dir=${OPENFAAS_BIN_DIR:-../shared/bin}
bin_dir=$(cd "$repo" && realpath -m -s "$bin_dir")

# Deadlines of the watchdogs, a little longer than the gateway's 60 s default upstream_timeout,
# so a test meets the gateway's deadline, not the watchdog's (tests override them per function).
TIMEOUTS=(--change 'ENV read_timeout=65s' --change 'ENV write_timeout=65s' --change 'ENV exec_timeout=65s')

# Debian's packages for what the images are made of: a static busybox, and gcc with the static
# glibc (libc6-dev has libc.a) for the of-watchdog image's upstream.
missing=()
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v gcc >/dev/null || missing+=(gcc)
[ -e "$(gcc -print-file-name=libc.a 2>/dev/null || echo /nonexistent)" ] || missing+=(libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
	echo "build.sh: installing ${missing[*]} from Debian" >&2
	. "$repo/scripts/apt.sh"
	apt_install "${missing[@]}"
fi
# A dynamically linked busybox (Debian's "busybox" package) would not run in
# an image without libc.
if ldd /bin/busybox >/dev/null 2>&1; then
	echo "error: /bin/busybox is dynamically linked; install busybox-static" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# rootfs DIR WATCHDOG: busybox with every applet, passwd, /tmp, the scripts and the watchdog.
rootfs() {
	local root=$1 watchdog=$bin_dir/$2
	if [ ! -x "$watchdog" ]; then
		echo "error: $watchdog is missing: the real OpenFaaS binaries are read from" \
			"\$OPENFAAS_BIN_DIR (default ../shared/bin beside the repository);" \
			"docs/testing.md, \"Getting the OpenFaaS binaries\", says where to get them" >&2
		exit 1
	fi
	mkdir -p "$root/bin" "$root/usr/bin" "$root/etc" "$root/tmp"
	chmod 1777 "$root/tmp"
	cp /bin/busybox "$root/bin/busybox"
	# Every applet, not just the ones the scripts need: handlers are arbitrary shell
	# snippets (env, sleep, wc, ...) and symlinks cost nothing.
	for applet in $(/bin/busybox --list); do
		[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
	done
	# So the function can run as --user nobody.
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
	# Where OpenFaaS templates put either watchdog.
	install -m 755 "$watchdog" "$root/usr/bin/fwatchdog"
	install -m 755 "$here/entrypoint.sh" "$root/entrypoint.sh"
	install -m 755 "$here/run-handler.sh" "$root/usr/bin/run-handler"
}

# import DIR IMAGE CHANGE...: import the root filesystem as IMAGE, replacing an older build.
import() {
	local root=$1 image=$2 old new
	shift 2
	# Every import creates a new image ID; remember the old one so repeated builds
	# do not pile up dangling images.
	old=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
	tar -C "$root" --owner=0 --group=0 --numeric-owner -c . |
		docker import \
			--change 'CMD ["/entrypoint.sh"]' \
			--change 'EXPOSE 8080' \
			--change 'ENV PATH=/usr/bin:/bin' \
			--change 'ENV handler=cat' \
			"${TIMEOUTS[@]}" "$@" - "$image" >/dev/null
	new=$(docker image inspect -f '{{.Id}}' "$image")
	if [ -n "$old" ] && [ "$old" != "$new" ]; then
		# Fails harmlessly if a container still uses it.
		docker image rm "$old" >/dev/null 2>&1 || true
	fi
	echo "$image"
}

classic() {
	local root=$work/classic
	rootfs "$root" fwatchdog
	# fprocess is split on spaces and never given to a shell: it names a script, which runs
	# the `handler` snippet. A deployment's envProcess ("cat", "wc -c") replaces it as usual.
	import "$root" "$1" --change 'ENV fprocess=/usr/bin/run-handler'
}

of_watchdog() {
	local root=$work/of-watchdog
	rootfs "$root" of-watchdog
	# Static, since the image has no libc: glibc >= 2.34 links threads statically without
	# warnings as long as nothing resolves names or users (upstream.c does neither).
	gcc -static -O2 -pthread -Wall -Wextra -Werror -o "$root/usr/bin/upstream" "$here/upstream.c"
	strip "$root/usr/bin/upstream"
	# mode=http starts fprocess once and proxies every call to upstream_url, over a pool of
	# kept-alive connections. The upstream listens on every address of the container, so tests
	# can see it is up; the watchdog reaches it over loopback.
	import "$root" "$1" \
		--change 'ENV mode=http' \
		--change 'ENV upstream_url=http://127.0.0.1:8082' \
		--change 'ENV fprocess="/usr/bin/upstream 8082"'
}

case ${1:-all} in
classic) classic "${2:-$CLASSIC_IMAGE}" ;;
of-watchdog) of_watchdog "${2:-$OF_WATCHDOG_IMAGE}" ;;
all)
	classic "$CLASSIC_IMAGE"
	of_watchdog "$OF_WATCHDOG_IMAGE"
	;;
*)
	echo "usage: $0 [classic|of-watchdog [IMAGE]]" >&2
	exit 2
	;;
esac
