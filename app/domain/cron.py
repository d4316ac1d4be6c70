"""Functions invoked on a schedule: which functions are cron functions, when their runs fall
due, and the call id of each run (pure).

A function is a cron function when its annotation ``topic`` names ``cron-function`` (topics are
separated by commas, as OpenFaaS's connectors read them) and its annotation ``schedule`` holds
one or more standard five-field cron expressions (minute, hour, day of month, month, day of week)
separated by ``;``. Its label ``com.openfaas.cron.timezone`` names the IANA time zone the
expressions are read in (UTC when absent), and ``com.openfaas.cron.concurrency`` is ``forbid``
(the default: a run that falls due while the previous one still goes is skipped) or ``allow``.
The labels are read only for cron functions.

Only the standard grammar is taken, so that a schedule means here what it means to any cron:
``*``, numbers, ranges, steps, lists, and three-letter month and weekday names, in exactly five
fields. Seconds and years (six or seven fields), ``@daily`` and the like, and the extensions
``L``, ``W``, ``#``, ``?`` and ``H`` are refused, and so is an expression that never falls due
(``0 0 30 2 *``). As in cron, when both the day of month and the day of week are restricted, a
day matching either is due.

Due times follow the time zone's wall clock as Vixie cron does: a time that a change to summer
time skips is due at the jump (02:30 on a night going from 02:00 to 03:00 is due at 03:00), and
a time that the change back repeats is due once, unless the expression's minute or hour field
starts with ``*``: runs every N minutes or hours keep their pace through the repeated hour.

A run's call id is ``cron-<unix seconds of its due time>-<hash>``, the hash being 12 hex digits
of the function's ``namespace/name`` (a name and a namespace would not fit into a call id
together). Every scheduler computes the same id for the same run, so the queue keeps one run
whoever puts it (``Queue.put`` refuses an id it holds), and ``run_due_time`` reads the due time
back from an id.

Errors are ``CronError``, a ValueError naming the annotation or label at fault.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

TOPIC = "topic"
CRON_TOPIC = "cron-function"
SCHEDULE = "schedule"
TIMEZONE = "com.openfaas.cron.timezone"
CONCURRENCY = "com.openfaas.cron.concurrency"
FORBID, ALLOW = "forbid", "allow"

_VALUE = r"(?:[0-9]{1,2}|[A-Za-z]{3})"
_ITEM = rf"(?:\*|{_VALUE}(?:-{_VALUE})?)(?:/[0-9]{{1,2}})?"
_FIELD = re.compile(rf"{_ITEM}(?:,{_ITEM})*")
_EXAMPLE = "such as '*/5 * * * *' or '0 9 * * mon-fri'"
_RUN_ID = re.compile(r"cron-([0-9]{1,12})-([0-9a-f]{12})")


class CronError(ValueError):
    """A cron function's annotation or label is unusable; ``field`` is where the deployment gave
    it, ``annotations`` or ``labels``."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CronSpec:
    """When a cron function runs: its expressions, the zone they are read in, and ``concurrency``
    (FORBID: skip a run due while the previous one still goes; ALLOW: run it anyway)."""

    schedules: tuple[str, ...]
    timezone: tzinfo
    concurrency: str = FORBID

    @property
    def schedule(self) -> str:
        """The expressions as one annotation value, as each run is told."""
        return "; ".join(self.schedules)


def cron_spec(annotations: dict[str, str] | None, labels: dict[str, str] | None) -> CronSpec | None:
    """The schedule of a function with these annotations and labels, None when it is no cron
    function. Raises CronError naming the annotation or label at fault."""
    annotations, labels = annotations or {}, labels or {}
    topics = {topic.strip() for topic in annotations.get(TOPIC, "").split(",")}
    if CRON_TOPIC not in topics:
        return None
    text = annotations.get(SCHEDULE, "")
    schedules = tuple(" ".join(part.split()) for part in text.split(";") if part.strip())
    if not schedules:
        raise CronError(f"annotation {SCHEDULE} must hold a cron expression {_EXAMPLE} when topic is {CRON_TOPIC}", "annotations")
    for schedule in schedules:
        _check_schedule(schedule)
    return CronSpec(schedules, _timezone(labels.get(TIMEZONE)), _concurrency(labels.get(CONCURRENCY)))


def _check_schedule(schedule: str) -> None:
    fields = schedule.split(" ")
    if len(fields) != 5 or not all(_FIELD.fullmatch(field) for field in fields):
        raise CronError(
            f"annotation {SCHEDULE} takes standard five-field cron expressions {_EXAMPLE} "
            f"(*, numbers, ranges, steps, lists, month and day names), not {schedule!r}",
            "annotations",
        )
    try:
        times = croniter(schedule, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except CroniterError as exc:  # a value out of its field's range, a name in the wrong field
        raise CronError(f"annotation {SCHEDULE}: {schedule!r} is not a valid cron expression: {exc}", "annotations") from None
    try:
        times.get_next(float)
    except CroniterError:  # croniter searched years ahead for a date that never comes
        raise CronError(f"annotation {SCHEDULE}: {schedule!r} never falls due", "annotations") from None


def _timezone(name: str | None) -> tzinfo:
    if name is None:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: a path rather than a zone's name ("../x", "/etc/localtime", "").
        raise CronError(f"label {TIMEZONE} must name a time zone such as Europe/Berlin or UTC, not {name!r}", "labels") from None


def _concurrency(value: str | None) -> str:
    if value is None:
        return FORBID
    if value not in (FORBID, ALLOW):
        raise CronError(f"label {CONCURRENCY} must be {FORBID} or {ALLOW}, not {value!r}", "labels")
    return value


def due_times(spec: CronSpec, after: float, until: float) -> list[int]:
    """The instants (unix seconds) at which ``spec`` falls due in (``after``, ``until``], oldest
    first; an instant two expressions share is there once."""
    due: set[int] = set()
    start = datetime.fromtimestamp(after, spec.timezone)
    for schedule in spec.schedules:
        minute, hour = schedule.split(" ")[:2]
        paced = minute.startswith("*") or hour.startswith("*")
        times = croniter(schedule, start)
        while (at := times.get_next(datetime)).timestamp() <= until:
            if paced or not _repeated(at, spec.timezone):
                due.add(int(at.timestamp()))
    return sorted(due)


def _repeated(at: datetime, zone: tzinfo) -> bool:
    """Whether the wall time of ``at`` is the second of two that clocks going back make."""
    # The zone sets fold (PEP 495) on the later of two equal wall times, and only there.
    return datetime.fromtimestamp(at.timestamp(), zone).fold == 1


def _function_hash(namespace: str, name: str) -> str:
    return hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:12]


def run_id(namespace: str, name: str, due: int) -> str:
    """The call id of the run of function ``name`` of ``namespace`` due at ``due`` (unix seconds)."""
    return f"cron-{due}-{_function_hash(namespace, name)}"


def run_due_time(call_id: str, namespace: str, name: str) -> int | None:
    """When the run ``call_id`` names was due, if it is a run of that function; else None."""
    match = _RUN_ID.fullmatch(call_id)
    if match is None or match.group(2) != _function_hash(namespace, name):
        return None
    return int(match.group(1))
