"""What the tests and the benchmarks both use, so that neither imports the other.

The repository's root, where the real OpenFaaS binaries are, basic-auth headers, free host ports,
the docker CLI, a container's address the host reaches directly, and a gunicorn-served gateway on
a loopback port. ``tests/`` and
``bench/`` import this package; it imports neither of them.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The real OpenFaaS binaries (faas-cli, the watchdogs, faas-swarm) cannot be committed: they are
# read from this folder, by default ../shared/bin beside the repository (a relative value is taken
# from the repository root, as images/watchdog/build.sh takes it).
OPENFAAS_BIN_DIR = "OPENFAAS_BIN_DIR"
DEFAULT_BIN_DIR = "../shared/bin"
BINARIES_DOC = 'docs/testing.md, "Getting the OpenFaaS binaries", says where to get them'


def bin_dir() -> Path:
    """The folder of the OpenFaaS binaries, absolute (not checked)."""
    return Path(os.path.normpath(ROOT / (os.environ.get(OPENFAAS_BIN_DIR) or DEFAULT_BIN_DIR)))


def openfaas_binary(name: str) -> Path:
    """The executable ``name`` in ``bin_dir()``. Raises FileNotFoundError naming the setting and
    the docs when it is missing."""
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(
            f"{path} is missing: the real OpenFaaS binaries are read from ${OPENFAAS_BIN_DIR} "
            f"(default {DEFAULT_BIN_DIR} beside the repository); {BINARIES_DOC}"
        )
    return path


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header for HTTP basic auth."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (bind to 0.0.0.0 for a host-mode publish)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def docker(*args: str, input: bytes | None = None, check: bool = True, timeout: float = 180) -> str:
    """Run the docker CLI; its stdout, stripped. CalledProcessError (with stderr) on failure, and
    TimeoutExpired after ``timeout`` s: some commands (`docker service logs`) can hang for good."""
    result = subprocess.run(["docker", *args], input=input, capture_output=True, check=False, timeout=timeout)
    if check and result.returncode:
        raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
    return result.stdout.decode(errors="replace").strip()


def bridge_ip(container: str) -> str:
    """The container's address on docker_gwbridge or bridge, which the host reaches without docker-proxy."""
    subnets = [
        ipaddress.ip_network(docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", network))
        for network in ("docker_gwbridge", "bridge")
    ]
    pid = docker("inspect", "-f", "{{.State.Pid}}", container)
    command = ["nsenter", "-t", pid, "-n", "ip", "-4", "-o", "addr"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    for address in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out):
        if any(ipaddress.ip_address(address) in subnet for subnet in subnets):
            return address
    raise SystemExit(f"{container} has no address on docker_gwbridge or bridge")


class Gateway:
    """A gunicorn process serving ``wsgi:app`` with gevent workers on a loopback port, with a
    state folder of its own (async queue, metrics), removed when it stops. A subclass names the
    credentials it accepts: the tests' (tests/gateway.py) or the benchmarks' (bench/common.py)."""

    user: str
    password: str

    def __init__(self, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._state = tempfile.TemporaryDirectory(prefix="gateway-state-")
        self.state_dir = Path(self._state.name)
        environment = {
            **os.environ,
            "basic_auth_user": self.user,
            "basic_auth_password": self.password,
            "state_dir": self._state.name,
            # Nothing sends it nginx's call log; leave the machine's UDP port alone.
            "call_log_port": "0",
            # Several such gateways may share one Swarm (and a person's stack): each would scale
            # the same functions. A test that is about the autoscaler switches it on.
            "autoscaler": "false",
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{self.port}", "wsgi:app"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> "Gateway":
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2)
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("gunicorn did not start:\n" + self.process.stdout.read().decode(errors="replace"))
                time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._state.cleanup()


def nginx_files() -> list[str]:
    """nginx's bind-mounted files, as scripts/up.sh lists them for the digest that makes
    docker-compose start nginx again when one changes."""
    listed = re.search(r'^NGINX_FILES="([^"]+)"$', (ROOT / "scripts/up.sh").read_text(), re.MULTILINE)
    return listed.group(1).split() if listed else []
