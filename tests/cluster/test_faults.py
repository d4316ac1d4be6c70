"""A node lost and a gateway lost under load: few failed calls and none late, no async call lost
or run twice (but the lost gateway's own, at least once), the lost node reported and back, one
autoscaler leader.

The scenarios are harness/cluster_faults.py's, which bench/cluster_faults.py prints for
docs/benchmarks.md.
"""

from __future__ import annotations

from harness.cluster import Cluster, on
from harness.cluster_faults import Report, gateway_loss, node_loss

# Calls in flight when a node or a gateway goes: c16 at most, a few per client at worst.
HANDFUL = 48


def absorbed(report: Report) -> Report:
    """Print the report and check what both faults must leave: a handful of failed calls, none
    late, recovery, and no async call lost."""
    print("\n".join(report.lines()))
    assert report.failed <= HANDFUL, report
    assert report.failed_after_grace == 0, report
    assert report.recovered is not None, report
    assert report.async_lost == 0, report
    return report


def test_a_lost_node_costs_a_handful_of_calls_and_no_async_call(cluster: Cluster, name: str):
    report = absorbed(node_loss(cluster, name))
    assert report.async_duplicated == 0, report
    assert report.async_succeeded + report.async_failed == report.async_accepted, report
    assert report.events[:1] == ["node.down"] and "node.ready" in report.events, report


def test_a_lost_gateway_costs_only_its_requests_in_flight(cluster: Cluster, name: str):
    report = absorbed(gateway_loss(cluster, name))
    # At least once: a call whose callback the lost gateway had sent, but not yet recorded, when
    # it died is run again by the gateway that takes it over, and called back again. No other
    # call may be (seen once in eight runs: two calls of one batch finishing as the kill came).
    assert set(report.async_duplicated_ids) <= set(report.async_taken_over), report
    # One leader at a time: the Redis lease names one process, and a takeover happens at most once.
    assert sum(1 for line in report.leaders if line.endswith(" leads")) <= 1, report.leaders
    redis = on("node-1", "docker", "ps", "-q", "--filter", "name=faas_redis")
    assert on("node-1", "docker", "exec", redis, "redis-cli", "GET", "faas-swarm-py:autoscaler"), "no leader"
