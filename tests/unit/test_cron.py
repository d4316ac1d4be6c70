"""Cron functions (app.domain.cron): which functions are, their schedules, due times and run ids."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.domain.cron import (
    ALLOW,
    CONCURRENCY,
    FORBID,
    TIMEZONE,
    CronError,
    CronSpec,
    cron_spec,
    due_times,
    run_due_time,
    run_id,
)
from app.queue import valid_call_id
from tests.unit.helpers import function_names

BERLIN = ZoneInfo("Europe/Berlin")


def cron(schedule: str, **labels: str) -> dict:
    return {"annotations": {"topic": "cron-function", "schedule": schedule}, "labels": labels}


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()


def local(instants: list[int], zone=timezone.utc) -> list[str]:
    return [datetime.fromtimestamp(instant, zone).strftime("%m-%d %H:%M%z") for instant in instants]


@pytest.mark.parametrize("annotations", [{}, {"schedule": "* * * * *"}, {"topic": "kafka", "schedule": "* * * * *"}])
def test_a_function_without_the_cron_topic_is_no_cron_function(annotations):
    assert cron_spec(annotations, {CONCURRENCY: "whatever"}) is None


def test_a_cron_function_reads_its_schedule_in_utc_and_forbids_overlap_by_default():
    assert cron_spec(**cron("*/5 * * * *")) == CronSpec(("*/5 * * * *",), timezone.utc, FORBID)


def test_the_cron_topic_may_be_one_of_several():
    assert cron_spec({"topic": "kafka, cron-function", "schedule": "0 * * * *"}, {}) is not None


def test_several_schedules_are_separated_by_semicolons_and_fall_due_together():
    spec = cron_spec(**cron(" 0 9  * * mon-fri ;0 12 * * *; ", **{TIMEZONE: "Europe/Berlin", CONCURRENCY: ALLOW}))
    assert spec == CronSpec(("0 9 * * mon-fri", "0 12 * * *"), BERLIN, ALLOW)
    assert spec.schedule == "0 9 * * mon-fri; 0 12 * * *"
    # Friday 2026-01-02 to Sunday: 09:00 on the weekday only, noon every day, in Berlin's winter (UTC+1).
    assert local(due_times(spec, utc(2026, 1, 2), utc(2026, 1, 4, 23)), BERLIN) == [
        "01-02 09:00+0100", "01-02 12:00+0100", "01-03 12:00+0100", "01-04 12:00+0100",
    ]


def test_an_instant_two_schedules_share_falls_due_once():
    spec = cron_spec(**cron("0 * * * *; 0 */2 * * *"))
    assert local(due_times(spec, utc(2026, 1, 1), utc(2026, 1, 1, 2))) == ["01-01 01:00+0000", "01-01 02:00+0000"]


def test_due_times_are_those_after_the_start_and_up_to_the_end():
    spec = cron_spec(**cron("* * * * *"))
    minute = utc(2026, 1, 1, 0, 1)
    assert due_times(spec, minute - 60, minute) == [minute]
    assert due_times(spec, minute, minute + 59.9) == []
    assert due_times(spec, minute - 0.5, minute + 0.5) == [minute]


def test_a_restricted_day_of_month_and_day_of_week_each_make_a_day_due():
    # As in cron: the 13th of the month, and every Friday.
    spec = cron_spec(**cron("0 0 13 * fri"))
    assert local(due_times(spec, utc(2026, 2, 1), utc(2026, 2, 28))) == [
        "02-06 00:00+0000", "02-13 00:00+0000", "02-20 00:00+0000", "02-27 00:00+0000",
    ]


def test_a_time_zone_keeps_the_wall_clock_across_summer_time():
    spec = cron_spec(**cron("0 9 * * *", **{TIMEZONE: "Europe/Berlin"}))
    assert local(due_times(spec, utc(2026, 3, 28), utc(2026, 3, 30))) == ["03-28 08:00+0000", "03-29 07:00+0000"]


def test_a_time_the_clocks_skip_is_due_at_the_jump():
    # Berlin, 2026-03-29: 02:00 becomes 03:00.
    spec = cron_spec(**cron("30 2 * * *", **{TIMEZONE: "Europe/Berlin"}))
    assert local(due_times(spec, utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)), BERLIN) == [
        "03-29 03:00+0200", "03-30 02:30+0200",
    ]


def test_a_time_the_clocks_repeat_is_due_once():
    # Berlin, 2026-10-25: 03:00 summer time becomes 02:00 again.
    spec = cron_spec(**cron("30 2 * * *", **{TIMEZONE: "Europe/Berlin"}))
    assert local(due_times(spec, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)), BERLIN) == [
        "10-25 02:30+0200", "10-26 02:30+0100",
    ]


@pytest.mark.parametrize("schedule, due", [
    ("*/30 * * * *", ["02:00+0200", "02:30+0200", "02:00+0100", "02:30+0100", "03:00+0100"]),
    ("0 * * * *", ["02:00+0200", "02:00+0100", "03:00+0100"]),
    ("*/30 2 * * *", ["02:00+0200", "02:30+0200", "02:00+0100", "02:30+0100"]),
])
def test_runs_every_few_minutes_or_hours_keep_their_pace_through_the_repeated_hour(schedule, due):
    spec = cron_spec(**cron(schedule, **{TIMEZONE: "Europe/Berlin"}))
    assert local(due_times(spec, utc(2026, 10, 24, 23, 59), utc(2026, 10, 25, 2)), BERLIN) == ["10-25 " + at for at in due]


@pytest.mark.parametrize(
    "annotations, labels, named, field",
    [
        ({"topic": "cron-function"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": " ; "}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "* * * *"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "0 * * * * *"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "0 0 * * * * 2026"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "@daily"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "0 0 L * *"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "0 0 * * 5#2"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "H * * * *"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "61 * * * *"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "jan * * * *"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "* * * * *; 0 0 30 2 *"}, {}, "annotation schedule", "annotations"),
        ({"topic": "cron-function", "schedule": "* * * * *"}, {TIMEZONE: "Mars/Olympus"}, f"label {TIMEZONE}", "labels"),
        ({"topic": "cron-function", "schedule": "* * * * *"}, {TIMEZONE: "../etc/passwd"}, f"label {TIMEZONE}", "labels"),
        ({"topic": "cron-function", "schedule": "* * * * *"}, {TIMEZONE: ""}, f"label {TIMEZONE}", "labels"),
        ({"topic": "cron-function", "schedule": "* * * * *"}, {CONCURRENCY: "Allow"}, f"label {CONCURRENCY}", "labels"),
    ],
)
def test_an_unusable_schedule_or_label_is_refused_naming_it(annotations, labels, named, field):
    with pytest.raises(CronError) as refused:
        cron_spec(annotations, labels)
    assert str(refused.value).startswith(named)
    assert refused.value.field == field


def test_a_run_id_is_a_call_id_holding_its_due_time_and_its_function():
    call_id = run_id("openfaas-fn", "nightly", 1767225600)
    assert valid_call_id(call_id) and call_id.startswith("cron-1767225600-")
    assert run_due_time(call_id, "openfaas-fn", "nightly") == 1767225600
    assert run_due_time(call_id, "openfaas-fn", "hourly") is None
    assert run_due_time(call_id, "team-a", "nightly") is None
    assert run_due_time("3f6c2f9e-3b1c-4a4e-9a52-6b1f2d1e8c11", "openfaas-fn", "nightly") is None
    assert run_due_time(call_id + "0", "openfaas-fn", "nightly") is None


@given(function_names, function_names, st.integers(min_value=0, max_value=10**12 - 1))
@example("f", "openfaas-fn", 10**12 - 1)
def test_every_run_id_is_a_call_id_that_gives_its_due_time_back(name, namespace, due):
    call_id = run_id(namespace, name, due)
    assert valid_call_id(call_id)
    assert run_due_time(call_id, namespace, name) == due
