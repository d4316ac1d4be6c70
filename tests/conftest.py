"""Session-wide test ordering."""

from __future__ import annotations


def pytest_collection_modifyitems(items):
    """Run the tests that restart the Docker daemon last: a restart stops every container, so
    nothing else may be running on Docker at that point (the stable sort keeps all other order)."""
    items.sort(key=lambda item: item.get_closest_marker("docker_restart") is not None)
