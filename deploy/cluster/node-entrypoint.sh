#!/bin/sh
# A Docker-in-Docker node of the local cluster (scripts/cluster.sh): dockerd in a container.
#
# The container runs with every capability but CAP_SYS_RESOURCE (the machine's bounding set lacks
# it, so --privileged fails), unconfined seccomp, AppArmor and system paths, a private cgroup
# namespace and an anonymous volume on /var/lib/docker (overlay2 cannot nest on overlay2).
# Docker still mounts /sys and the cgroup hierarchies read-only, and dockerd must create cgroups:
# /sys is remounted read-write, and each cgroup v1 hierarchy mounted afresh (a remount of it is
# refused as busy), which in the private cgroup namespace gives the node its own subtree.
# A node restarted after a kill finds its old pid files: they are removed.
mount -o remount,rw /sys
awk '$3 == "cgroup" {print $2, $4}' /proc/self/mounts | while read -r mountpoint options; do
  controllers=$(echo "$options" | tr , '\n' | grep -vxE 'ro|rw|nosuid|nodev|noexec|relatime' | paste -sd, -)
  umount "$mountpoint"
  mount -t cgroup -o "$controllers" cgroup "$mountpoint"
done
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid
mkdir -p /etc/docker
# The cluster's registry is plain HTTP on the cluster's own bridge network.
cat >/etc/docker/daemon.json <<JSON
{"insecure-registries": ["${CLUSTER_REGISTRY:-registry:5000}"], "storage-driver": "overlay2", "log-level": "warn"}
JSON
exec dockerd --host unix:///var/run/docker.sock
