"""A function's labels as the async accept route reads them (app.runtime.label_cache): once per
``ttl`` per function, a missing function remembered as missing just as long."""

from __future__ import annotations

import pytest

from app.domain.models import FunctionDeployment
from app.errors import NotFound
from app.runtime.label_cache import FunctionLabels
from tests.fakes import fake_runtime


class Counting:
    """The runtime's functions, counting the reads that reach them."""

    def __init__(self, functions):
        self.functions, self.reads = functions, 0

    def get_function(self, name, namespace=None):
        self.reads += 1
        return self.functions.get_function(name, namespace)


def test_labels_are_read_once_per_ttl():
    runtime = fake_runtime()
    runtime.functions.deploy(FunctionDeployment(service="echo", image="docker.io/functions/alpine:latest",
                                                labels={"com.openfaas.retry.attempts": "2"}))
    now = [0.0]
    counting = Counting(runtime.functions)
    cache = FunctionLabels(counting, ttl=1.0, clock=lambda: now[0])
    assert cache.labels("echo", None)["com.openfaas.retry.attempts"] == "2"
    now[0] = 0.9
    cache.labels("echo", None)
    assert counting.reads == 1
    now[0] = 1.0
    cache.labels("echo", None)
    assert counting.reads == 2


def test_a_missing_function_is_not_found_until_it_is_read_again():
    runtime = fake_runtime()
    now = [0.0]
    counting = Counting(runtime.functions)
    cache = FunctionLabels(counting, ttl=1.0, clock=lambda: now[0])
    with pytest.raises(NotFound, match="ghost"):
        cache.labels("ghost", None)
    runtime.functions.deploy(FunctionDeployment(service="ghost", image="docker.io/functions/alpine:latest"))
    with pytest.raises(NotFound):
        cache.labels("ghost", None)
    assert counting.reads == 1
    now[0] = 1.5
    assert cache.labels("ghost", None) is not None
