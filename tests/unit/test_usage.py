"""The usage sampler (app.background.usage): CPU rates and memory summed over a function's replicas,
sampled only while usage was asked for recently."""

from __future__ import annotations

import time

import pytest

from app.background.usage import UsageSampler
from tests.unit.helpers import NS, fn
from tests.waiting import wait_for


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_usage_is_the_cpu_rate_and_memory_summed_over_replicas(runtime, engine):
    clock = Clock()
    sampler = UsageSampler(runtime.replicas, interval=5, keep_for=60, clock=clock)
    runtime.functions.deploy(fn(replicas=2))
    runtime.functions.deploy(fn("other"))
    assert sampler.usage(NS, "echo") is None  # nothing sampled yet: absent, not zero
    sampler.sample()
    assert sampler.usage(NS, "echo") is None  # one reading is no rate
    for task in engine.running_tasks("echo"):
        engine.cpu_usage[task["Status"]["ContainerStatus"]["ContainerID"]] += 250_000_000  # 0.25 s each
    clock.now += 5
    sampler.sample()
    usage = sampler.usage(NS, "echo")
    assert usage.cpu == pytest.approx(100.0)  # 2 x 0.25 s over 5 s = 100 millicores
    assert usage.total_memory_bytes == 2 * 1_941_504
    assert sampler.usage(NS, "other").cpu == 0
    assert sampler.usage("team-a", "echo") is None
    (first, _) = sampler.with_cpu(runtime.replicas.instances("echo"))
    assert first.cpu == pytest.approx(50.0)


def test_the_sampler_runs_only_while_usage_was_asked_for_recently(runtime):
    clock = Clock()
    sampler = UsageSampler(runtime.replicas, interval=5, keep_for=60, clock=clock)
    assert not sampler.sampling
    sampler.usage(NS, "echo")
    clock.now += 59
    assert sampler.sampling
    sampler.with_cpu([])
    clock.now += 59
    assert sampler.sampling
    clock.now += 1
    assert not sampler.sampling


def test_an_ask_wakes_the_sampler_and_never_waits_on_stats(runtime, engine):
    runtime.functions.deploy(fn())
    sampler = UsageSampler(runtime.replicas, interval=0.05, keep_for=60)
    sampler.start()
    try:
        stats_calls = lambda: engine.count("GET", r"/containers/[^/]+/stats")  # noqa: E731
        engine.inject("GET", r"/containers/[^/]+/stats", lambda: time.sleep(0.3), times=None)
        started = time.monotonic()
        assert sampler.usage(NS, "echo") is None
        assert time.monotonic() - started < 0.2  # the stats take 0.3 s each: nobody waited on them
        wait_for(lambda: sampler.usage(NS, "echo"), timeout=10, interval=0.05, what="usage sampled")
        assert stats_calls() >= 2
    finally:
        sampler.stop()
