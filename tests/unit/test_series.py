"""GET /system/function/<name>/series (app.web.blueprints.series): the sampled points of the
namespace asked for, and what it cannot serve."""

from __future__ import annotations

import pytest

from app.domain.models import FunctionDeployment, Namespace
from app.web import state


def test_the_series_route_serves_the_points(app, client, echo):
    sampler = state.parts_of(app).time_series
    sampler.sample()
    sampler.sample()
    body = client.get("/system/function/echo/series").get_json()
    assert body["name"] == "echo" and body["interval"] == 10.0
    assert [point["replicas"] for point in body["points"]] == [1]


def test_the_series_route_serves_the_namespace_asked_for(app, client, runtime, echo):
    runtime.namespaces.create_namespace(Namespace("team-a"))
    runtime.functions.deploy(FunctionDeployment(service="echo", image="docker.io/functions/alpine:latest", namespace="team-a"))
    runtime.functions.scale("echo", 3, "team-a")
    sampler = state.parts_of(app).time_series
    sampler.sample()
    sampler.sample()
    body = client.get("/system/function/echo/series?namespace=team-a").get_json()
    assert [point["replicas"] for point in body["points"]] == [3]


@pytest.mark.parametrize(
    "path, status",
    [
        ("/system/function/ghost/series", 404),
        ("/system/function/Bad_Name/series", 400),
        ("/system/function/echo/series?namespace=no-such", 400),
        ("/system/function/echo/series?namespace=Bad_NS", 400),
    ],
)
def test_the_series_route_refuses_what_it_cannot_serve(client, echo, path, status):
    response = client.get(path)
    assert response.status_code == status and response.mimetype == "text/plain"
