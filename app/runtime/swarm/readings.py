"""Pure readings of Docker's task, container and stats JSON into replicas and their counters.

Nothing here talks to Docker, so every rule is unit-tested on plain dicts. What the shapes are was
checked against dockerd 20.10 (API 1.41, cgroup v1) and Docker's own CLI: stats of a container
that is not running read zero with ``read`` at Go's zero time; the working set is the usage less
the inactive file cache (``total_inactive_file`` on cgroup v1, ``inactive_file`` on v2); block
I/O ops are ``Read``/``Write`` on v1 and ``read``/``write`` on v2.
"""

from __future__ import annotations

from app.domain.models import LABEL_NAMESPACE, UNMEASURED, Instance, ReplicaHealth, ReplicaStats
from app.domain.timestamps import from_docker

# Task states after which a task's container never runs again.
_ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
# Go's zero time: what Docker writes for "never".
_NEVER = "0001-01-01T00:00:00Z"


def namespace_of(labels: dict | None, default: str) -> str:
    """A function's namespace from its service's or container's labels; absent is ``default``."""
    return (labels or {}).get(LABEL_NAMESPACE) or default


def container_of(task: dict) -> str | None:
    """The container ID of a task, once Swarm has created one."""
    return ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID") or None


def is_running(task: dict) -> bool:
    return (task.get("Status") or {}).get("State") == "running" and container_of(task) is not None


def read_stats(stats: dict, function: str, namespace: str, instance: str) -> ReplicaStats | None:
    """The counters in one-shot ``stats`` of a replica's container; None when Docker measured
    nothing (the container is not running)."""
    if (stats.get("read") or _NEVER).startswith("0001-"):
        return None
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    if cpu is None:
        return None
    memory = stats.get("memory_stats") or {}
    extra = memory.get("stats") or {}
    inactive = extra.get("total_inactive_file", extra.get("inactive_file", 0))
    usage = memory.get("usage")
    networks = stats.get("networks")
    rx = tx = UNMEASURED
    if networks:
        rx = sum(net.get("rx_bytes", 0) for net in networks.values())
        tx = sum(net.get("tx_bytes", 0) for net in networks.values())
    block = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive")
    read = write = UNMEASURED
    if block is not None:
        read = sum(item.get("value", 0) for item in block if str(item.get("op", "")).lower() == "read")
        write = sum(item.get("value", 0) for item in block if str(item.get("op", "")).lower() == "write")
    return ReplicaStats(
        function=function,
        namespace=namespace,
        instance=instance,
        cpu_seconds=cpu / 1e9,
        memory_bytes=max(usage - inactive, 0) if usage is not None else UNMEASURED,
        network_rx_bytes=rx,
        network_tx_bytes=tx,
        block_read_bytes=read,
        block_write_bytes=write,
    )


def read_health(state: dict | None) -> ReplicaHealth:
    """The health check in a container's ``State`` (from inspect); ``none`` without one."""
    health = (state or {}).get("Health")
    if not health:
        return ReplicaHealth()
    probes = health.get("Log") or []
    return ReplicaHealth(
        status=health.get("Status") or "none",
        failing_streak=int(health.get("FailingStreak") or 0),
        last_output=probes[-1].get("Output") if probes else None,
    )


def _created(task: dict) -> str:
    # Docker drops trailing zeros of the fraction, so its strings only sort once normalised.
    return from_docker(task["CreatedAt"]) if task.get("CreatedAt") else ""


def current_replicas(tasks: list[dict]) -> list[tuple[dict, dict | None]]:
    """Each slot's newest task meant to run, with the newest other task of the slot that ended
    (for its exit code), by slot. A slot with no task meant to run (scaled away, or the service
    going) is no replica any more. After a rollback the slot's replica can be older than a task
    that was stopped: the one given up."""
    slots: dict[object, list[dict]] = {}
    for task in tasks:
        slots.setdefault(task.get("Slot") or task["ID"], []).append(task)
    replicas = []
    # Replicated tasks have slots 1..n; a task without one (global mode) stands alone, after them.
    for _, history in sorted(slots.items(), key=lambda item: (isinstance(item[0], str), str(item[0]).zfill(20))):
        history.sort(key=_created)
        meant = [t for t in history if t.get("DesiredState") not in ("shutdown", "remove")]
        if not meant:
            continue
        newest = meant[-1]
        ended = [t for t in history if t is not newest and (t.get("Status") or {}).get("State") in _ENDED]
        replicas.append((newest, ended[-1] if ended else None))
    return replicas


def read_instance(
    task: dict,
    previous: dict | None,
    *,
    name: str,
    namespace: str,
    node: str | None,
    state: dict | None,
    stats: ReplicaStats | None,
    unmeasured: str | None = None,
) -> Instance:
    """One replica from its task, the slot's previous ended task, its container's inspected
    ``State`` and its counters (None where they could not be read, ``unmeasured`` saying why)."""
    status = task.get("Status") or {}
    ended = task if status.get("State") in _ENDED else previous
    ended_status = (ended or {}).get("Status") or {}
    exit_code = ((ended_status.get("ContainerStatus") or {}).get("ExitCode")) if ended else None
    started = (state or {}).get("StartedAt")
    if not started or started.startswith("0001-"):
        started = status.get("Timestamp") if status.get("State") == "running" else None
    return Instance(
        id=task["ID"],
        name=name,
        namespace=namespace,
        slot=task.get("Slot"),
        node=node,
        state=status.get("State") or "unknown",
        desired_state=task.get("DesiredState") or "unknown",
        health=read_health(state) if state and state.get("Running") else ReplicaHealth(),
        started_at=from_docker(started) if started else None,
        exit_code=exit_code,
        error=ended_status.get("Err") or None,
        memory_bytes=stats.memory_bytes if stats else UNMEASURED,
        network_rx_bytes=stats.network_rx_bytes if stats else UNMEASURED,
        network_tx_bytes=stats.network_tx_bytes if stats else UNMEASURED,
        block_read_bytes=stats.block_read_bytes if stats else UNMEASURED,
        block_write_bytes=stats.block_write_bytes if stats else UNMEASURED,
        unmeasured=unmeasured,
    )
