"""The functions network (app/runtime/swarm/networks.py), created once at a process's start
(``Health.prepare``), whichever gateway creates it first."""

from __future__ import annotations


def test_ready_creates_the_functions_network_once(runtime, engine):
    engine._add_network("func_functions_old", "overlay", "swarm", {}, attachable=True)  # a substring match is not it
    runtime.health.prepare()
    runtime.health.prepare()
    network = [n for n in engine.networks.values() if n["Name"] == "func_functions"]
    assert len(network) == 1 and network[0]["Attachable"] and network[0]["Driver"] == "overlay"
    assert engine.count("POST", "/networks/create") == 1


def test_a_network_created_meanwhile_by_another_gateway_is_fine(runtime, engine):
    engine.inject("POST", "/networks/create", lambda: engine._add_network("func_functions", "overlay", "swarm", {}, True))
    runtime.health.prepare()
    assert [n["Name"] for n in engine.networks.values()].count("func_functions") == 1
