"""Readiness and health labels, the probes' verdicts, which replicas are routed, and when an
update is given up (app.domain.probes)."""

from __future__ import annotations

import pytest

from app.domain.models import TaskEndpoint
from app.domain.probes import (
    HEALTH_PREFIX,
    READY_PREFIX,
    ROLLBACK_WINDOW,
    Probe,
    Probes,
    ProbeState,
    rollback_reason,
    routable,
)


def test_defaults_probe_the_watchdogs_health_path():
    probes = Probes.from_labels({})
    assert probes.readiness == probes.health == Probe("/_/health", 0.0, 2.0, 1.0, 1, 3)


def test_every_setting_is_read_under_its_own_prefix():
    labels = {
        READY_PREFIX + "path": "/ready", READY_PREFIX + "initialDelaySeconds": "3",
        READY_PREFIX + "periodSeconds": "0.5", READY_PREFIX + "timeoutSeconds": "2",
        READY_PREFIX + "successThreshold": "2", READY_PREFIX + "failureThreshold": "5",
        HEALTH_PREFIX + "path": "/live",
    }
    probes = Probes.from_labels(labels)
    assert probes.readiness == Probe("/ready", 3.0, 0.5, 2.0, 2, 5)
    assert probes.health == Probe(path="/live")


@pytest.mark.parametrize("label, value", [
    (READY_PREFIX + "path", "health"),
    (READY_PREFIX + "path", "/a b"),
    (HEALTH_PREFIX + "periodSeconds", "0"),
    (READY_PREFIX + "periodSeconds", "-1"),
    (READY_PREFIX + "timeoutSeconds", "nan"),
    (READY_PREFIX + "timeoutSeconds", "inf"),
    (READY_PREFIX + "initialDelaySeconds", "-0.5"),
    (READY_PREFIX + "initialDelaySeconds", "7200"),
    (HEALTH_PREFIX + "failureThreshold", "0"),
    (READY_PREFIX + "successThreshold", "1.5"),
    (READY_PREFIX + "successThreshold", "101"),
    (READY_PREFIX + "port", "8081"),  # not a setting: a typo must not pass unnoticed
])
def test_a_bad_value_names_its_label(label, value):
    with pytest.raises(ValueError, match=label.replace(".", r"\.")):
        Probes.from_labels({label: value})


def test_an_initial_delay_of_zero_is_allowed():
    assert Probes.from_labels({READY_PREFIX + "initialDelaySeconds": "0"}).readiness.initial_delay == 0


def test_settle_time_covers_the_delay_every_forgiven_failure_the_successes_and_a_timeout():
    assert Probe(initial_delay=3, period=2, timeout=1, success_threshold=2, failure_threshold=3).settle_time == 3 + 2 * 5 + 1


def test_readiness_needs_its_successes_in_a_row_and_fails_after_its_failures_in_a_row():
    probe = Probe(success_threshold=2, failure_threshold=2)
    state = ProbeState(passing=False)
    state = state.after(True, probe)
    assert not state.passing
    state = state.after(False, probe).after(True, probe)
    assert not state.passing  # the streak was broken
    state = state.after(True, probe)
    assert state.passing and state.ever_passed
    state = state.after(False, probe)
    assert state.passing
    state = state.after(False, probe)
    assert not state.passing and state.ever_passed


def test_health_passes_until_shown_otherwise():
    probe = Probe(failure_threshold=1)
    state = ProbeState(passing=True)
    assert not state.after(False, probe).passing


def _task(task_id, current=True, draining=False):
    return TaskEndpoint(task_id, f"10.0.0.{task_id}", current, draining)


def test_routes_only_ready_replicas():
    tasks = [_task(1), _task(2), _task(3)]
    assert routable(tasks, {1, 3}, 3) == ["10.0.0.1", "10.0.0.3"]
    assert routable(tasks, set(), 3) == []


def test_during_an_update_the_old_version_answers_until_a_new_one_is_ready_and_never_again_after():
    old, new = [_task(1, current=False), _task(2, current=False)], [_task(3), _task(4)]
    assert routable(old + new, {1, 2}, 2) == ["10.0.0.1", "10.0.0.2"]
    assert routable(old + new, {1, 2, 3}, 2) == ["10.0.0.3"]
    assert routable(old + new, {1, 2, 3, 4}, 2) == ["10.0.0.3", "10.0.0.4"]


def test_a_draining_replica_gets_calls_only_when_nothing_else_is_ready():
    tasks = [_task(1, current=False, draining=True), _task(2)]
    assert routable(tasks, {1, 2}, 1) == ["10.0.0.2"]
    assert routable(tasks, {1}, 1) == ["10.0.0.1"]
    assert routable(tasks, set(), 1) == ["10.0.0.1"]


def test_a_function_scaled_to_zero_is_not_called_on_its_replicas_way_out():
    assert routable([_task(1, draining=True), _task(2, draining=True)], {1, 2}, 0) == []


PROBE = Probe(period=2, timeout=1, failure_threshold=3)  # settles in 9 s
NEVER = ProbeState(passing=False)
ONCE = ProbeState(passing=False, ever_passed=True)


@pytest.mark.parametrize("replicas, since_update, rolls_back", [
    ([(9.0, NEVER)], 10.0, True),
    ([(8.9, NEVER)], 10.0, False),  # not given its time yet
    ([(9.0, NEVER), (20.0, ONCE)], 30.0, False),  # one new replica was ready
    ([], 30.0, False),  # no new replica runs yet
    ([(9.0, NEVER)], None, False),  # never updated: nothing to go back to
    ([(9.0, NEVER)], ROLLBACK_WINDOW + 1, False),  # long after the update: the replica's own fault
])
def test_an_update_is_given_up_when_no_new_replica_became_ready_in_time(replicas, since_update, rolls_back):
    reason = rollback_reason(replicas, PROBE, since_update)
    assert (reason is not None) is rolls_back
    if rolls_back:
        assert reason == "no new replica became ready within 9s (readiness probe GET /_/health every 2s)"
