"""Session-wide test policy: where gateways keep their files, and where the Docker-daemon
restart runs, and in what order.

A gateway's state folder (``state_dir``: its async queue and metrics) defaults to one under
``$XDG_STATE_HOME``, which is also where a person's own gateway keeps its queue. The session
points that variable at a temporary folder of its own, so no configuration a test builds with
defaults, and no gateway a test starts, can open or empty a live gateway's files.

Every test under tests/integration, tests/e2e and tests/cluster needs a Docker engine that is a Swarm manager:
it is marked ``docker`` here, by folder, so ``-m "not docker"`` runs everything else (the unit
tests, which need no daemon). A test elsewhere that needs Docker belongs in one of those folders.

Stopping dockerd stops every container on the machine, a person's own included. So the tests
marked ``docker_restart`` run only where that is safe or wanted: on CI (``CI=true``, a disposable
machine), when selected with ``-m docker_restart`` (``make test-faults``), or when their file or
node is named on the command line. Anywhere else they are deselected, and one line says so.

The dashboard's browser tests (tests/e2e, tests/cluster) share one ``chromium`` per module:
Playwright driving Debian's chromium, nothing downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import sync_playwright

_LEFT_OUT = pytest.StashKey[list[str]]()
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session", autouse=True)
def state_home(tmp_path_factory) -> Iterator[Path]:
    """The session's stand-in for ``$XDG_STATE_HOME``."""
    folder = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `make tools` installs Debian's chromium", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


# The folders whose tests need the Docker daemon.
_DOCKER_FOLDERS = tuple(Path(__file__).parent / folder for folder in ("integration", "e2e", "cluster"))


def pytest_itemcollected(item: pytest.Item) -> None:
    # Marked as collected, so that -m (which deselects afterwards) sees the marker.
    if any(folder in item.path.parents for folder in _DOCKER_FOLDERS):
        item.add_marker(pytest.mark.docker)


def _named(config: pytest.Config, item: pytest.Item) -> bool:
    """Whether a command-line argument names the item's own file (or a node in it)."""
    for arg in config.args:
        if Path(config.invocation_params.dir, arg.split("::")[0]).resolve() == item.path:
            return True
    return False


def _restarts_wanted(config: pytest.Config) -> bool:
    return os.environ.get("CI", "").lower() == "true" or "docker_restart" in (config.option.markexpr or "")


# trylast: after -k and -m have deselected, so the line appears only for tests that would have run.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _restarts_wanted(config):
        left_out = [item for item in items if item.get_closest_marker("docker_restart") and not _named(config, item)]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = [item for item in items if item not in left_out]
            config.stash[_LEFT_OUT] = sorted({item.nodeid.split("::")[0] for item in left_out})
    # The restart runs last: it stops every container, so nothing else may be using Docker then
    # (the stable sort keeps all other order).
    items.sort(key=lambda item: item.get_closest_marker("docker_restart") is not None)


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    files = config.stash.get(_LEFT_OUT, None)
    if files:
        return (f"left out {', '.join(files)}: it stops the Docker daemon and every container on this machine; "
                "`make test-faults` runs it (CI=true does too)")
    return None
