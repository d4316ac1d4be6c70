"""Marshmallow schemas for every request and response body.

Request schemas ignore unknown keys (clients of different versions send different fields), read
an empty string or null in an optional field as the field being absent (Go clients send their
zero values for fields they do not set), and turn wrong types and impossible values into a
``ValidationError``; ``load_body`` converts that into an ``InvalidRequest`` (400) whose sentence
names the field, e.g. ``limits.memory``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from flask import Request
from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from app.domain.cron import CronError, cron_spec
from app.domain.images import parse_image, registry_auth_header
from app.domain.models import (
    ANNOTATION_PREFIX,
    GATEWAY_LABEL_PREFIX,
    LABEL_FAAS_FUNCTION,
    LABEL_FUNCTION,
    LABEL_NAMESPACE,
    MAX_REPLICAS,
    EventRequest,
    FunctionDeployment,
    FunctionStatus,
    LogRequest,
    Namespace,
    Resources,
    ScalingPolicy,
)
from app.domain.probes import Probes
from app.domain.retries import check_labels as check_retry_labels
from app.domain.names import function_name_error, namespace_error, secret_name_error
from app.domain.quantities import MIN_MEMORY_LIMIT, parse_cpu, parse_memory
from app.domain.scaling import FIRING, RESOLVED
from app.domain.timestamps import format_rfc3339_nano, normalise
from app.errors import InvalidRequest
from app.queue import FINISHED, STATES, CallResult, valid_call_id

# Docker refuses secrets of 500 KiB or more.
SECRET_VALUE_MAX = 500 * 1024 - 1
# Swarm's own grammar for placement constraints (swarmkit's manager/constraint): a key of two or
# more of [A-Za-z0-9_.-] not starting with a digit, == or !=, and a value without operators.
# Anything else Docker refuses with an error of its own, after the request was accepted.
CONSTRAINT_PATTERN = (
    r"[ \t\n\f\r]*[A-Za-z_][A-Za-z0-9_.\-]+[ \t\n\f\r]*(?:==|!=)[ \t\n\f\r]*"
    r"[A-Za-z0-9:_.*()?+\[\]\\^$|/\-][A-Za-z0-9:_.*()?+\[\]\\^$|/\- \t\n\f\r]*"
)
_CONSTRAINT = re.compile(CONSTRAINT_PATTERN + r"\Z")
_ENV_NAME = re.compile(r"[^=\x00]+\Z")


def _check(error_of):
    """Adapt an ``x_error(value) -> str | None`` function into a marshmallow validator."""

    def validator(value: str) -> None:
        error = error_of(value)
        if error:
            raise ValidationError(error)

    return validator


def _parsed_by(parse):
    """A validator that accepts values ``parse`` accepts, quoting its ValueError otherwise."""

    def validator(value: str) -> None:
        try:
            parse(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    return validator


class StrictBoolean(fields.Boolean):
    """A JSON boolean: ``true`` or ``false``, not ``"yes"`` or ``1``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        # Not a membership test: 0 == False and 1 == True in Python, but not in JSON.
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class StrictInteger(fields.Integer):
    """A JSON whole number; booleans, floats and strings are refused."""

    def __init__(self, **kwargs: Any):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class _Request(Schema):
    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _absent_when_empty(self, data: Any, **_: Any) -> Any:
        # "" and null are how Go's encoder writes a field nobody set: read them as absent. A
        # required field keeps them, so its own validator names it. Values inside maps
        # (envVars, labels) are not fields and keep their "".
        if not isinstance(data, dict):
            return data
        optional = {field.data_key or name for name, field in self.fields.items() if not field.required}
        return {key: value for key, value in data.items() if not (key in optional and (value is None or value == ""))}


class ResourcesSchema(_Request):
    memory = fields.String(validate=_parsed_by(parse_memory))
    cpu = fields.String(validate=_parsed_by(parse_cpu))

    @post_load
    def _make(self, data: dict, **_: Any) -> Resources | None:
        # {"memory": "", "cpu": ""} from a Go client sets nothing, like no object at all.
        return Resources(memory=data.get("memory"), cpu=data.get("cpu")) if data else None


class LimitsSchema(ResourcesSchema):
    @validates_schema
    def _memory_floor(self, data: dict, **_: Any) -> None:
        memory = data.get("memory")
        if memory and parse_memory(memory) < MIN_MEMORY_LIMIT:
            raise ValidationError("must be at least 6Mi: Docker cannot start a container with less", "memory")


_StringMap = dict(keys=fields.String(validate=validate.Length(min=1)), values=fields.String())


class FunctionDeploymentSchema(_Request):
    """FunctionDeployment in, as POST and PUT /system/functions take it."""

    service = fields.String(required=True, validate=_check(function_name_error))
    image = fields.String(required=True, validate=_parsed_by(parse_image))
    namespace = fields.String(validate=_check(namespace_error))
    envProcess = fields.String(attribute="env_process")
    envVars = fields.Dict(
        attribute="env_vars",
        keys=fields.String(
            validate=validate.Regexp(_ENV_NAME, error="environment variable names cannot be empty or contain '='")
        ),
        values=fields.String(),
    )
    constraints = fields.List(
        fields.String(validate=validate.Regexp(_CONSTRAINT, error="{input!r} is not a constraint such as node.role == manager"))
    )
    secrets = fields.List(fields.String(validate=_check(secret_name_error)))
    labels = fields.Dict(**_StringMap)
    annotations = fields.Dict(**_StringMap)
    limits = fields.Nested(LimitsSchema)
    requests = fields.Nested(ResourcesSchema)
    readOnlyRootFilesystem = StrictBoolean(attribute="read_only_root_filesystem")
    registryAuth = fields.String(attribute="registry_auth")
    network = fields.String()

    @validates_schema
    def _cross_checks(self, data: dict, **_: Any) -> None:
        labels = data.get("labels") or {}
        name = data.get("service")
        for key, value in labels.items():
            if key.startswith(ANNOTATION_PREFIX) or key.startswith(GATEWAY_LABEL_PREFIX):
                raise ValidationError(f"label {key!r} uses a prefix reserved for annotations and the gateway", "labels")
            if key == LABEL_NAMESPACE:
                raise ValidationError(f"label {key!r} is the gateway's: give the namespace in the namespace field", "labels")
            if key in (LABEL_FUNCTION, LABEL_FAAS_FUNCTION) and value != name:
                raise ValidationError(f"label {key!r} must equal the function name {name!r}", "labels")
        try:
            ScalingPolicy.from_labels(labels)
            Probes.from_labels(labels)
            check_retry_labels(labels)
        except ValueError as exc:
            raise ValidationError(str(exc), "labels") from None
        try:
            cron_spec(data.get("annotations"), labels)
        except CronError as exc:
            raise ValidationError(str(exc), exc.field) from None
        if data.get("registry_auth") and data.get("image"):
            try:
                registry_auth_header(data["registry_auth"], data["image"])
            except ValueError as exc:
                raise ValidationError(str(exc), "registryAuth") from None

    @post_load
    def _make(self, data: dict, **_: Any) -> FunctionDeployment:
        if data.get("secrets"):
            data["secrets"] = list(dict.fromkeys(data["secrets"]))
        data["read_only_root_filesystem"] = bool(data.get("read_only_root_filesystem"))
        return FunctionDeployment(**data)


class DeleteFunctionSchema(_Request):
    """DELETE /system/functions body."""

    functionName = fields.String(required=True, validate=_check(function_name_error))
    namespace = fields.String(validate=_check(namespace_error))


class ScaleRequestSchema(_Request):
    """POST /system/scale-function/{name} body; the path names the function, so ``serviceName``
    (faas-provider's spelling) and ``service`` (other clients') are optional, and must agree with
    the path when given."""

    serviceName = fields.String()
    service = fields.String()
    namespace = fields.String(validate=_check(namespace_error))
    replicas = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_REPLICAS))


class SecretSchema(_Request):
    """POST and PUT /system/secrets body: ``value`` (text) or ``rawValue`` (base64)."""

    name = fields.String(required=True, validate=_check(secret_name_error))
    namespace = fields.String(validate=_check(namespace_error))
    value = fields.String()
    rawValue = fields.String()

    @post_load
    def _decode(self, data: dict, **_: Any) -> dict:
        value, raw = data.get("value"), data.get("rawValue")
        if value is not None and raw is not None:
            raise ValidationError("give either value or rawValue, not both", "value")
        if raw is not None:
            try:
                data["data"] = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError("must be base64", "rawValue") from None
        elif value is not None:
            data["data"] = value.encode("utf-8")
        else:
            raise ValidationError("a secret needs a value or a rawValue", "value")
        if not 0 < len(data["data"]) <= SECRET_VALUE_MAX:
            field = "rawValue" if raw is not None else "value"
            raise ValidationError(f"must hold between 1 byte and {SECRET_VALUE_MAX} bytes", field)
        return data


class SecretNameSchema(_Request):
    """DELETE /system/secrets body, and each item of GET /system/secrets."""

    name = fields.String(required=True, validate=_check(secret_name_error))
    namespace = fields.String(validate=_check(namespace_error))


class NamespaceSchema(_Request):
    """FunctionNamespace: the body of POST /system/namespace/ and PUT /system/namespace/{name},
    and each namespace read back. Its labels and annotations are the client's; the gateway's
    own label key and the annotations' label prefix are refused, since they share one store."""

    name = fields.String(required=True, validate=_check(namespace_error))
    labels = fields.Dict(**_StringMap)
    annotations = fields.Dict(**_StringMap)

    @validates_schema
    def _reserved(self, data: dict, **_: Any) -> None:
        for key in data.get("labels") or {}:
            if key == LABEL_NAMESPACE or key.startswith(ANNOTATION_PREFIX):
                raise ValidationError(f"label {key!r} is reserved for the gateway", "labels")

    @post_load
    def _make(self, data: dict, **_: Any) -> Namespace:
        return Namespace(data["name"], dict(data.get("labels") or {}), dict(data.get("annotations") or {}))


class ResourcesOutSchema(Schema):
    memory = fields.String()
    cpu = fields.String()

    @post_dump
    def _drop_empty(self, data: dict, **_: Any) -> dict:
        return {key: value for key, value in data.items() if value is not None}


class UsageSchema(Schema):
    """FunctionUsage out: ``cpu`` in millicores, ``totalMemoryBytes`` the working set."""

    cpu = fields.Float()
    totalMemoryBytes = fields.Float(attribute="total_memory_bytes")


class RolloutSchema(Schema):
    """Where a function's last update stands; ``message`` absent when there is nothing to say."""

    state = fields.String()
    message = fields.String()

    @post_dump
    def _drop_absent(self, data: dict, **_: Any) -> dict:
        return {key: value for key, value in data.items() if value is not None}


class FunctionStatusSchema(Schema):
    """FunctionStatus out; ``envVars``, ``limits`` and ``requests`` are absent when not given."""

    name = fields.String()
    image = fields.String()
    namespace = fields.String(validate=_check(namespace_error))
    invocationCount = fields.Integer(attribute="invocation_count")
    replicas = fields.Integer()
    availableReplicas = fields.Integer(attribute="available_replicas")
    envProcess = fields.String(attribute="env_process")
    envVars = fields.Dict(attribute="env_vars", keys=fields.String(), values=fields.String())
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    annotations = fields.Dict(keys=fields.String(), values=fields.String())
    secrets = fields.List(fields.String())
    constraints = fields.List(fields.String())
    limits = fields.Nested(ResourcesOutSchema)
    requests = fields.Nested(ResourcesOutSchema)
    readOnlyRootFilesystem = fields.Boolean(attribute="read_only_root_filesystem")
    createdAt = fields.String(attribute="created_at")
    usage = fields.Nested(UsageSchema)
    rollout = fields.Nested(RolloutSchema)

    @post_dump
    def _drop_absent(self, data: dict, **_: Any) -> dict:
        return {key: value for key, value in data.items() if value is not None}


class FunctionStatusesDumper:
    """Lists of FunctionStatus to JSON as FunctionStatusSchema dumps them, keeping the JSON of
    the fields that do not move between calls (all but the counts, available replicas and usage)
    per status object: the runtime hands back the same object while a function is unchanged, and
    for a thousand functions marshmallow took 20 ms a list."""

    LIVE = ("invocationCount", "availableReplicas", "usage")

    def __init__(self):
        self._fixed = FunctionStatusSchema(exclude=self.LIVE)
        self._usage = UsageSchema()
        self._kept: dict[int, tuple[FunctionStatus, dict]] = {}

    def _dump_live(self, live: Any) -> dict:
        # By hand: three plain fields, a thousand times a list (tests/unit/test_schemas.py
        # checks it stays what FunctionStatusSchema dumps).
        dumped = {"invocationCount": live.invocation_count, "availableReplicas": live.available_replicas}
        if live.usage is not None:
            dumped["usage"] = self._usage.dump(live.usage)
        return dumped

    def dump(self, read: list[FunctionStatus], live: list[Any]) -> list[dict]:
        """The JSON of each status of ``read`` (as the runtime returned it) with the live fields
        of the object at the same place in ``live`` (``invocation_count``,
        ``available_replicas`` and ``usage`` attributes)."""
        kept: dict[int, tuple[FunctionStatus, dict]] = {}
        dumped = []
        for status, now in zip(read, live, strict=True):
            fixed = self._kept.get(id(status))
            if fixed is None or fixed[0] is not status:
                fixed = (status, self._fixed.dump(status))
            kept[id(status)] = fixed
            dumped.append({**fixed[1], **self._dump_live(now)})
        self._kept = kept
        return dumped


class StatusQuerySchema(_Request):
    """GET /system/functions and /system/function/{name} query: ``usage`` asks for usage."""

    namespace = fields.String()
    usage = fields.Boolean()


class ReplicaHealthSchema(Schema):
    status = fields.String()
    failingStreak = fields.Integer(attribute="failing_streak")
    lastOutput = fields.String(attribute="last_output", allow_none=True)


class InstanceSchema(Schema):
    """One replica of GET /system/function/{name}/instances; counters are -1 where unmeasured."""

    id = fields.String()
    name = fields.String()
    namespace = fields.String()
    slot = fields.Integer(allow_none=True)
    node = fields.String(allow_none=True)
    state = fields.String()
    desiredState = fields.String(attribute="desired_state")
    health = fields.Nested(ReplicaHealthSchema)
    startedAt = fields.String(attribute="started_at", allow_none=True)
    exitCode = fields.Integer(attribute="exit_code", allow_none=True)
    error = fields.String(allow_none=True)
    cpu = fields.Float()
    memoryBytes = fields.Integer(attribute="memory_bytes")
    networkRxBytes = fields.Integer(attribute="network_rx_bytes")
    networkTxBytes = fields.Integer(attribute="network_tx_bytes")
    blockReadBytes = fields.Integer(attribute="block_read_bytes")
    blockWriteBytes = fields.Integer(attribute="block_write_bytes")
    unmeasured = fields.String(allow_none=True)
    ready = fields.Boolean(allow_none=True)


class EventQuerySchema(_Request):
    """GET /system/events query: ``function`` need not exist yet (a client may await its deploy)."""

    namespace = fields.String()
    function = fields.String(validate=_check(function_name_error))

    @post_load
    def _make(self, data: dict, **_: Any) -> EventRequest:
        return EventRequest(namespace=data.get("namespace") or "", function=data.get("function"))


class FunctionEventSchema(Schema):
    """One event of GET /system/events; fields that do not apply to its type are absent."""

    type = fields.String()
    time = fields.String()
    name = fields.String()
    namespace = fields.String()
    instance = fields.String()
    replicas = fields.Integer()
    previousReplicas = fields.Integer(attribute="previous_replicas")
    exitCode = fields.Integer(attribute="exit_code")
    rollout = fields.String()
    message = fields.String()
    node = fields.String()

    @post_dump
    def _drop_absent(self, data: dict, **_: Any) -> dict:
        return {key: value for key, value in data.items() if value is not None}


class VersionSchema(Schema):
    sha = fields.String()
    release = fields.String()


class ProviderSchema(Schema):
    provider = fields.String()
    orchestration = fields.String()
    version = fields.Nested(VersionSchema)


class GatewayInfoSchema(Schema):
    """GET /system/info response."""

    provider = fields.Nested(ProviderSchema)
    version = fields.Nested(VersionSchema)
    arch = fields.String()


class LogQuerySchema(_Request):
    """GET /system/logs query: ``tail`` <= 0 means every line; ``since`` is RFC 3339."""

    name = fields.String(required=True, validate=_check(function_name_error))
    namespace = fields.String(validate=_check(namespace_error))
    instance = fields.String(validate=validate.Regexp(r"[a-zA-Z0-9]{1,64}\Z", error="{input!r} is not a task ID"))
    tail = fields.Integer(strict=False)
    follow = fields.Boolean()
    since = fields.String(validate=_parsed_by(normalise))

    @post_load
    def _make(self, data: dict, **_: Any) -> LogRequest:
        tail = data.get("tail")
        return LogRequest(
            name=data["name"],
            namespace=data.get("namespace") or "",
            instance=data.get("instance") or None,
            since=normalise(data["since"]) if data.get("since") else None,
            tail=tail if tail is not None and tail > 0 else None,
            follow=data.get("follow", False),
        )


class LogMessageSchema(Schema):
    """One line of the GET /system/logs NDJSON body."""

    name = fields.String()
    namespace = fields.String(validate=_check(namespace_error))
    instance = fields.String()
    timestamp = fields.String()
    text = fields.String()


def _rfc3339(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    whole = int(seconds)
    return format_rfc3339_nano(whole, round((seconds - whole) * 1e9))


class _Timestamp(fields.Field):
    """A unix time out as RFC 3339 (null when it has not happened)."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return _rfc3339(value)


class CallResultSchema(Schema):
    """What a function answered an async call: ``body`` as text when it is UTF-8, else
    ``bodyBase64``; ``truncated`` when the gateway kept only the first async_result_max_bytes."""

    statusCode = fields.Integer(attribute="status_code")
    headers = fields.Method("_headers")
    truncated = fields.Boolean()

    def _headers(self, result: CallResult) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in result.headers:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers

    @post_dump(pass_original=True)
    def _body(self, data: dict, result: CallResult, **_: Any) -> dict:
        try:
            data["body"] = result.body.decode("utf-8")
        except UnicodeDecodeError:
            data["bodyBase64"] = base64.b64encode(result.body).decode("ascii")
        return data


class RunSchema(Schema):
    """An earlier run of a replayed call."""

    state = fields.String()
    attempts = fields.Integer()
    startedAt = _Timestamp(attribute="started_at")
    finishedAt = _Timestamp(attribute="finished_at")
    statusCode = fields.Integer(attribute="status_code", allow_none=True)
    error = fields.String(allow_none=True)


class CallRecordSchema(Schema):
    """What became of an async call (GET /system/async-calls/{callId}); times are RFC 3339 or
    null until they happen, ``result`` null until there is one (and absent from lists)."""

    callId = fields.String(attribute="call_id")
    function = fields.String()
    namespace = fields.String()
    state = fields.String()
    attempts = fields.Integer()
    acceptedAt = _Timestamp(attribute="accepted_at")
    startedAt = _Timestamp(attribute="started_at")
    finishedAt = _Timestamp(attribute="finished_at")
    statusCode = fields.Integer(attribute="status_code", allow_none=True)
    durationSeconds = fields.Float(attribute="duration_seconds", allow_none=True)
    error = fields.String(allow_none=True)
    callbackDelivered = fields.Boolean(attribute="callback_delivered", allow_none=True)
    result = fields.Nested(CallResultSchema, allow_none=True)
    history = fields.List(fields.Nested(RunSchema))


def check_call_id(call_id: str, field: str = "call ID") -> str:
    """``call_id`` when it is one the gateway could have given; InvalidRequest (400) naming
    ``field`` if not."""
    if not valid_call_id(call_id):
        raise InvalidRequest(f"Invalid {field} {call_id[:200]!r}: it is 1-128 letters, digits and . _ : - "
                             "starting with a letter or digit.")
    return call_id


class AsyncCallsQuerySchema(_Request):
    """GET /system/async-calls query: filters, a page size, and the cursor a page gave."""

    function = fields.String(validate=_check(function_name_error))
    namespace = fields.String(validate=_check(namespace_error))
    state = fields.String(validate=validate.OneOf(STATES))
    limit = fields.Integer(strict=False, validate=validate.Range(0, 1000))  # 0, Go's unset: the default
    after = fields.String()


class ReplayQuerySchema(_Request):
    """POST /system/async-calls/retry query: which finished calls to put back (``dead`` unless
    said), at most ``limit`` of them."""

    function = fields.String(validate=_check(function_name_error))
    namespace = fields.String(validate=_check(namespace_error))
    state = fields.String(validate=validate.OneOf(sorted(FINISHED)))
    limit = fields.Integer(strict=False, validate=validate.Range(0, 1000))  # 0, Go's unset: the default


def load_query(schema: Schema, request: Request) -> Any:
    """Parse the query string with ``schema``; raises InvalidRequest (400) naming the parameter."""
    return _load(schema, request.args.to_dict())


class _Webhook(Schema):
    """Alertmanager's webhook bodies: fields this gateway does not use are ignored."""

    class Meta:
        # Alertmanager sends much more (annotations, startsAt, groupKey...); only these matter.
        unknown = EXCLUDE


class AlertLabelsSchema(_Webhook):
    function_name = fields.String(required=True, validate=validate.Length(min=1))
    alertname = fields.String(required=True)


class AlertSchema(_Webhook):
    # Alertmanager only ever sends these two; anything else is a mistake that would otherwise
    # quietly scale the function down to its minimum.
    status = fields.String(required=True, validate=validate.OneOf([FIRING, RESOLVED]))
    labels = fields.Nested(AlertLabelsSchema, required=True)


class AlertWebhookSchema(_Webhook):
    """POST /system/alert body (PrometheusAlert in the spec); each alert's own status decides."""

    status = fields.String(required=True)
    receiver = fields.String(required=True)
    alerts = fields.List(fields.Nested(AlertSchema), required=True)


def load_body(schema: Schema, request: Request) -> Any:
    """Parse the request's JSON body with ``schema``.

    Raises InvalidRequest (400) when the body is not a JSON object or a field is invalid; the
    sentence names the field (``limits.memory``) and says what is wrong with it.
    """
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return _load(schema, body)


def _load(schema: Schema, data: dict) -> Any:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc.messages)) from None


def describe_validation_error(messages: Any) -> str:
    """Flatten marshmallow's nested messages into one sentence naming each field at fault."""
    parts = [f"{path}: {text}" if path else text for path, text in _leaves(messages, "")]
    return "Invalid " + "; ".join(sorted(parts)).rstrip(".") + "."


def _leaves(messages: Any, path: str):
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                yield from _leaves(value, path)
            elif key == "value" and path and isinstance(value, (list, dict)):
                # Dict values are reported under an extra "value" key: name the entry instead.
                yield from _leaves(value, path)
            else:
                yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(messages, list):
        for item in messages:
            yield from _leaves(item, path)
    else:
        yield path, str(messages).rstrip(".")
