"""The per-process list of function services (app/runtime/swarm/service_cache.py) against the
in-memory Docker Engine: kept while Docker's events are followed and nothing changed, listed
again after a change made by any process of the gateway, after MAX_AGE, and always while the
events cannot be followed."""

from __future__ import annotations

from app.config import Config
from app.runtime.swarm import service_cache
from app.runtime.swarm.client import SwarmClient
from app.runtime.swarm.service_cache import ServiceCache
from tests.waiting import wait_for


class Listing:
    """A stand-in for Docker's service list that counts how often it is asked."""

    def __init__(self):
        self.count = 0

    def __call__(self) -> list[dict]:
        self.count += 1
        return [{"ID": f"list-{self.count}"}]


def kept(cache: ServiceCache) -> bool:
    return cache.services() is cache.services()


def test_kept_until_another_process_of_the_gateway_changes_a_service(engine, tmp_path):
    client = SwarmClient(Config(), engine.client())
    ours = ServiceCache(client, Listing(), str(tmp_path / "services.stamp"))
    theirs = ServiceCache(client, Listing(), str(tmp_path / "services.stamp"))
    wait_for(lambda: kept(ours), timeout=5, what="the list to be kept")
    for _ in range(3):
        before = ours.services()
        theirs.changed()  # no Docker event: only the stamp tells
        assert ours.services() is not before
        assert kept(ours)


def test_listed_again_once_too_old(engine, tmp_path):
    now = [0.0]
    cache = ServiceCache(SwarmClient(Config(), engine.client()), Listing(), str(tmp_path / "stamp"), clock=lambda: now[0])
    wait_for(lambda: kept(cache), timeout=5, what="the list to be kept")
    before = cache.services()
    now[0] += service_cache.MAX_AGE
    assert cache.services() is not before


def test_listed_every_time_while_docker_events_cannot_be_followed(engine, tmp_path):
    listing = Listing()
    engine.close()  # Docker gone: every request is refused
    cache = ServiceCache(SwarmClient(Config(), engine.client()), listing, str(tmp_path / "stamp"))
    for _ in range(3):
        cache.services()
    assert listing.count == 3
