#!/bin/bash
# Build a tiny classic-watchdog test function image offline: static busybox,
# the handler scripts and nothing else, imported straight into docker (no
# base image to pull, no registry needed).
set -euo pipefail

IMAGE=${1:-${WATCHDOG_IMAGE:-faas-test/watchdog:latest}}
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x /bin/busybox ]; then
	apt-get update
	apt-get install -y busybox-static
fi
# A dynamically linked busybox (Debian's "busybox" package) would not run in
# an image without libc.
if ldd /bin/busybox >/dev/null 2>&1; then
	echo "error: /bin/busybox is dynamically linked; install busybox-static" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"

cp /bin/busybox "$root/bin/busybox"
# Link every applet, not just the ones the handler needs: tests pass arbitrary
# shell snippets as fprocess (env, sleep, wc, ...) and symlinks cost nothing.
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done

# So the function can run as --user nobody.
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

install -m 755 "$here/handler.sh" "$root/handler.sh"
install -m 755 "$here/entrypoint.sh" "$root/entrypoint.sh"

# Every import creates a new image ID; remember the old one so repeated builds
# do not pile up dangling images.
old=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)

tar -C "$root" --owner=0 --group=0 --numeric-owner -c . |
	docker import \
		--change 'CMD ["/entrypoint.sh"]' \
		--change 'EXPOSE 8080' \
		--change 'ENV PATH=/bin' \
		--change 'ENV fprocess=cat' \
		- "$IMAGE" >/dev/null

new=$(docker image inspect -f '{{.Id}}' "$IMAGE")
if [ -n "$old" ] && [ "$old" != "$new" ]; then
	# Fails harmlessly if a container still uses it.
	docker image rm "$old" >/dev/null 2>&1 || true
fi

echo "$IMAGE"
