"""Domain objects shared by the schemas, the blueprints and the Swarm service layer.

They hold what the client said, in the client's own spelling (``128Mi`` stays ``128Mi``), so a
FunctionStatus can report exactly what was deployed. Scaling rules that the OpenFaaS labels
express live here as pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from app.domain.labels import label_duration, label_int, label_number

LABEL_FUNCTION = "com.openfaas.function"
LABEL_FAAS_FUNCTION = "faas_function"
# The namespace of a function's service, its containers and a secret; without it, the default.
LABEL_NAMESPACE = "com.openfaas.namespace"
ANNOTATION_PREFIX = "com.openfaas.annotations."
# Labels the gateway keeps for itself, e.g. the client's own spelling of a memory limit.
GATEWAY_LABEL_PREFIX = "com.openfaas.gateway."
LABEL_SCALE_MIN = "com.openfaas.scale.min"
LABEL_SCALE_MAX = "com.openfaas.scale.max"
LABEL_SCALE_FACTOR = "com.openfaas.scale.factor"
LABEL_SCALE_ZERO = "com.openfaas.scale.zero"
LABEL_SCALE_ZERO_DURATION = "com.openfaas.scale.zero-duration"
LABEL_SCALE_TYPE = "com.openfaas.scale.type"
LABEL_SCALE_TARGET = "com.openfaas.scale.target"
LABEL_SCALE_TARGET_PROPORTION = "com.openfaas.scale.target-proportion"

DEFAULT_SCALE_MIN = 1
DEFAULT_SCALE_MAX = 20
DEFAULT_SCALE_FACTOR = 20
# The autoscaler's load measures and the load one replica should carry by default (OpenFaaS
# Pro's names): calls per second, calls in flight, CPU millicores.
SCALE_TYPE_TARGETS = {"rps": 5.0, "capacity": 10.0, "cpu": 800.0}
DEFAULT_SCALE_TYPE = "rps"
DEFAULT_TARGET_PROPORTION = 0.9
DEFAULT_ZERO_DURATION = 15 * 60.0
# An upper bound for any replica count we are asked for, so a typo cannot ask Swarm for millions.
MAX_REPLICAS = 1000


@dataclass(frozen=True)
class Resources:
    """A ``limits`` or ``requests`` object, as the client wrote it."""

    memory: str | None = None
    cpu: str | None = None


@dataclass(frozen=True)
class FunctionDeployment:
    """A validated deploy or update request (FunctionDeployment in the OpenFaaS spec)."""

    service: str
    image: str
    namespace: str | None = None
    env_process: str | None = None
    env_vars: dict[str, str] | None = None
    constraints: list[str] | None = None
    secrets: list[str] | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    limits: Resources | None = None
    requests: Resources | None = None
    read_only_root_filesystem: bool = False
    registry_auth: str | None = None
    network: str | None = None


@dataclass(frozen=True)
class Namespace:
    """A namespace as clients create and read it (FunctionNamespace in OpenFaaS)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionStatus:
    """What the gateway reports about a deployed function (FunctionStatus in the spec), and
    ``rollout``: where its last update stands (None when it was never updated)."""

    name: str
    image: str
    namespace: str
    replicas: int
    available_replicas: int
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    env_process: str | None = None
    env_vars: dict[str, str] | None = None
    constraints: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    limits: Resources | None = None
    requests: Resources | None = None
    read_only_root_filesystem: bool = False
    created_at: str | None = None
    invocation_count: int = 0
    usage: "Usage | None" = None
    rollout: "Rollout | None" = None


@dataclass(frozen=True)
class Rollout:
    """Where a function's last update stands: ``state`` is Swarm's (updating, completed,
    paused, rollback_started, rollback_completed, ...) or ``rolled_back`` when the gateway gave
    the update up; ``message`` says why, when there is a reason to tell."""

    state: str
    message: str | None = None


@dataclass(frozen=True)
class TaskEndpoint:
    """A running replica as routing sees it: where it answers, whether it runs the function's
    current spec, and whether it is ``draining`` (the orchestrator is stopping it)."""

    id: str
    address: str
    current: bool
    draining: bool


@dataclass(frozen=True)
class FunctionEndpoints:
    """A function's running replicas with what probing and routing need: its labels (the probes
    are set there), desired ``replicas``, the ``version`` of its spec (a rollback names the one
    it gives up), whether it has a previous spec an update can be rolled back to, and when its
    last update started (epoch seconds, None when never updated)."""

    name: str
    namespace: str
    labels: dict[str, str]
    replicas: int
    version: int
    can_roll_back: bool
    updated_at: float | None
    tasks: list[TaskEndpoint]


@dataclass(frozen=True)
class Usage:
    """A function's resource use as OpenFaaS defines it (FunctionUsage): ``cpu`` in millicores
    averaged over the last measurement interval, ``total_memory_bytes`` the working set."""

    cpu: float
    total_memory_bytes: float


@dataclass(frozen=True)
class ScalingPolicy:
    """The ``com.openfaas.scale.*`` labels of a function, with OpenFaaS defaults.

    ``max_is_set`` tells whether the client set the maximum itself: a manual scale honours the
    maximum only then.
    """

    minimum: int = DEFAULT_SCALE_MIN
    maximum: int = DEFAULT_SCALE_MAX
    factor: int = DEFAULT_SCALE_FACTOR
    zero: bool = False
    max_is_set: bool = False
    kind: str = DEFAULT_SCALE_TYPE
    target: float = SCALE_TYPE_TARGETS[DEFAULT_SCALE_TYPE]
    target_proportion: float = DEFAULT_TARGET_PROPORTION
    zero_duration: float = DEFAULT_ZERO_DURATION

    @classmethod
    def from_labels(cls, labels: dict[str, str] | None) -> "ScalingPolicy":
        """Read the policy from labels.

        Raises ValueError naming the label when a value is not a whole number in range, or when
        the minimum exceeds the maximum.
        """
        labels = labels or {}
        minimum = label_int(labels, LABEL_SCALE_MIN, DEFAULT_SCALE_MIN, 0, MAX_REPLICAS)
        maximum = label_int(labels, LABEL_SCALE_MAX, DEFAULT_SCALE_MAX, 1, MAX_REPLICAS)
        factor = label_int(labels, LABEL_SCALE_FACTOR, DEFAULT_SCALE_FACTOR, 0, 100)
        if minimum > maximum:
            raise ValueError(f"label {LABEL_SCALE_MIN} ({minimum}) is above {LABEL_SCALE_MAX} ({maximum})")
        zero_text = labels.get(LABEL_SCALE_ZERO, "false").strip().lower()
        if zero_text not in {"true", "false"}:
            raise ValueError(f"label {LABEL_SCALE_ZERO} must be true or false, not {zero_text!r}")
        kind = labels.get(LABEL_SCALE_TYPE, DEFAULT_SCALE_TYPE).strip().lower()
        if kind not in SCALE_TYPE_TARGETS:
            raise ValueError(f"label {LABEL_SCALE_TYPE} must be one of {', '.join(SCALE_TYPE_TARGETS)}, not {kind!r}")
        return cls(
            minimum,
            maximum,
            factor,
            zero_text == "true",
            LABEL_SCALE_MAX in labels,
            kind=kind,
            target=label_number(labels, LABEL_SCALE_TARGET, SCALE_TYPE_TARGETS[kind], 1_000_000),
            target_proportion=label_number(labels, LABEL_SCALE_TARGET_PROPORTION, DEFAULT_TARGET_PROPORTION, 1),
            zero_duration=label_duration(labels, LABEL_SCALE_ZERO_DURATION, DEFAULT_ZERO_DURATION),
        )

    @property
    def autoscaled(self) -> bool:
        """Whether the autoscaler may change the replicas: min == max switches it off."""
        return self.minimum != self.maximum

    def replicas_for(self, load: float) -> int:
        """The replicas ``load`` asks for: ceil(load / (target x proportion)), at least one,
        within the minimum and maximum."""
        wanted = math.ceil(round(load / (self.target * self.target_proportion), 9))
        return min(max(wanted, self.minimum, 1), self.maximum)

    def initial_replicas(self) -> int:
        """Replicas for a new deployment: the minimum, but at least one."""
        return max(1, self.minimum)

    def replicas_after_update(self, current: int) -> int:
        """Keep the current count through an update, raised to the minimum, capped at a set maximum."""
        replicas = max(current, self.minimum)
        return min(replicas, self.maximum) if self.max_is_set else replicas

    def manual_scale(self, requested: int) -> int:
        """A client's scale request: zero is allowed; a maximum the client set is honoured."""
        return min(requested, self.maximum) if self.max_is_set else requested


@dataclass(frozen=True)
class LogRequest:
    """What a client asks of GET /system/logs.

    ``tail`` None means every line; ``since`` is a normalised RFC 3339 timestamp (see
    ``app.domain.timestamps``) or None.
    """

    name: str
    namespace: str
    instance: str | None = None
    since: str | None = None
    tail: int | None = None
    follow: bool = False


@dataclass(frozen=True)
class LogMessage:
    """One log line of one function instance; ``timestamp`` is RFC 3339 with nanoseconds."""

    name: str
    namespace: str
    instance: str
    timestamp: str
    text: str


# What a replica's counters read when the runtime cannot measure it (another node, not running).
UNMEASURED = -1


@dataclass(frozen=True)
class ReplicaStats:
    """One running replica's counters as the runtime read them at one moment.

    ``cpu_seconds`` is the CPU time used since the replica started; ``memory_bytes`` the working
    set (usage less inactive file cache); the byte counters are totals since start, or
    UNMEASURED where the runtime has none.
    """

    function: str
    namespace: str
    instance: str
    cpu_seconds: float
    memory_bytes: int
    network_rx_bytes: int = UNMEASURED
    network_tx_bytes: int = UNMEASURED
    block_read_bytes: int = UNMEASURED
    block_write_bytes: int = UNMEASURED


@dataclass(frozen=True)
class ReplicaHealth:
    """A replica's health check: ``status`` is healthy, unhealthy, starting or none (no check,
    or not readable from this node); ``failing_streak`` and ``last_output`` are the probe's."""

    status: str = "none"
    failing_streak: int = 0
    last_output: str | None = None


@dataclass(frozen=True)
class Instance:
    """One replica of a function, as GET /system/function/{name}/instances reports it.

    ``id`` is the one logs call ``instance``; ``exit_code`` and ``error`` are the last exit of
    this replica's slot (its own when it has ended, else its predecessor's), None when none
    ended; ``cpu`` is millicores over the last sampling interval and the other counters as in
    ReplicaStats, UNMEASURED where the runtime has none; ``unmeasured`` says why a running
    replica's are (its node could not be read), None otherwise; ``ready`` is whether its
    probes passed (it gets calls), None where this gateway does not probe it (yet).
    """

    id: str
    name: str
    namespace: str
    slot: int | None
    node: str | None
    state: str
    desired_state: str
    health: ReplicaHealth
    started_at: str | None
    exit_code: int | None
    error: str | None
    cpu: float = UNMEASURED
    memory_bytes: int = UNMEASURED
    network_rx_bytes: int = UNMEASURED
    network_tx_bytes: int = UNMEASURED
    block_read_bytes: int = UNMEASURED
    block_write_bytes: int = UNMEASURED
    unmeasured: str | None = None
    ready: bool | None = None


# Event types of GET /system/events.
FUNCTION_DEPLOYED = "function.deployed"
FUNCTION_UPDATED = "function.updated"
FUNCTION_SCALED = "function.scaled"
FUNCTION_DELETED = "function.deleted"
REPLICA_STARTED = "replica.started"
REPLICA_HEALTHY = "replica.healthy"
REPLICA_UNHEALTHY = "replica.unhealthy"
REPLICA_DIED = "replica.died"
REPLICA_OOM = "replica.oom"
# The gateway, or Swarm, gave an update up and put the previous spec back (``message``: why).
UPDATE_ROLLED_BACK = "update.rolled_back"
# A node of the cluster went down, and is ready again (``node`` names it).
NODE_DOWN = "node.down"
NODE_READY = "node.ready"
# The stream's own events: the runtime's event source went away, and came back.
STREAM_DISCONNECTED = "stream.disconnected"
STREAM_RECONNECTED = "stream.reconnected"


@dataclass(frozen=True)
class EventRequest:
    """What a client asks of GET /system/events: every function of ``namespace``, or only
    ``function`` when given."""

    namespace: str
    function: str | None = None


@dataclass(frozen=True)
class FunctionEvent:
    """One normalised runtime event; ``time`` is RFC 3339 with nanoseconds.

    Function events carry ``replicas`` (deployed, scaled) and ``previous_replicas`` (scaled);
    an update in progress carries ``rollout`` (updating, completed, ...); replica events carry
    ``instance`` and, for ``replica.died``, ``exit_code``; node events ``node`` (its hostname).
    Node and stream events name no function.
    """

    type: str
    time: str
    name: str | None = None
    namespace: str | None = None
    instance: str | None = None
    replicas: int | None = None
    previous_replicas: int | None = None
    exit_code: int | None = None
    rollout: str | None = None
    message: str | None = None
    node: str | None = None
