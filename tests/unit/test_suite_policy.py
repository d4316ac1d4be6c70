"""tests/conftest.py leaves the Docker-daemon restart out unless it is safe or asked for, and
marks the tests of the Docker folders ``docker``.

Each case runs pytest on a tiny suite of its own, with a copy of that conftest and a harmless
test carrying the ``docker_restart`` marker, so nothing here touches Docker.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness import ROOT

SUITE = {
    "conftest.py": (ROOT / "tests/conftest.py").read_text(),
    "pytest.ini": "[pytest]\nmarkers =\n    docker: needs Docker\n    docker_restart: stops the Docker daemon\n",
    "test_other.py": "def test_other():\n    pass\n",
    "integration/test_swarm.py": "def test_swarm():\n    pass\n",
    "e2e/test_stack.py": "def test_stack():\n    pass\n",
    "test_restart.py": "import pytest\n\npytestmark = pytest.mark.docker_restart\n\n\ndef test_restart():\n    pass\n",
}
LINE = "left out test_restart.py: it stops the Docker daemon and every container on this machine"


@pytest.fixture
def run(tmp_path):
    for name, text in SUITE.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)

    def run(*args: str, ci: str = "") -> str:
        # No plugins but pytest's own: each run starts in well under a second.
        env = {key: value for key, value in os.environ.items() if key != "CI"} | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        env.update({"CI": ci} if ci else {})
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    return run


def test_left_out_by_default_with_one_line(run):
    output = run()
    assert output.count(LINE) == 1
    assert "test_other PASSED" in output and "test_restart PASSED" not in output
    assert "3 passed, 1 deselected" in output


@pytest.mark.parametrize("args, ci", [((), "true"), (("-m", "docker_restart"), ""), (("test_restart.py",), "")])
def test_run_on_ci_or_when_asked_for(run, args, ci):
    output = run(*args, ci=ci)
    assert "test_restart PASSED" in output and LINE not in output


def test_runs_after_every_other_test(run):
    output = run("test_restart.py", "test_other.py")
    assert output.index("test_other PASSED") < output.index("test_restart PASSED")


def test_the_docker_folders_are_marked_and_not_docker_leaves_them_out(run):
    output = run("-m", "not docker")
    assert "test_other PASSED" in output and "test_swarm" not in output and "test_stack" not in output
    output = run("-m", "docker")
    assert "test_swarm PASSED" in output and "test_stack PASSED" in output and "test_other" not in output
