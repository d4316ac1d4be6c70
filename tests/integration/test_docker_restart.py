"""The Docker daemon really stops while the gateway runs, then comes back.

While it is away: /healthz answers 500 saying so, system routes that need Docker answer 503 with
a sentence, an open log stream ends cleanly (whole NDJSON lines, a proper end of the chunked
body), and routes that do not need Docker keep working. Once it is back, every route works again
without restarting the gateway.

Stopping dockerd stops every container on the machine, so tests/conftest.py runs this module only
on CI or when asked for (``make test-faults``), and then after every other test of the session.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from harness import ROOT
from tests.gateway import AUTH, call
from tests.swarm import name, shared_name
from tests.waiting import wait_for

pytestmark = pytest.mark.docker_restart


def _dockerd_pid() -> int:
    """The host's dockerd: the one in this process's PID namespace. A Docker-in-Docker container
    (a cluster node, a person's own) shows its dockerd in /proc too, in a namespace of its own."""
    # From /proc rather than pidof or pgrep, which a minimal machine may not have.
    ours = os.readlink("/proc/self/ns/pid")
    found = [int(entry.name) for entry in Path("/proc").iterdir()
             if entry.name.isdigit() and _read(entry / "comm") == "dockerd" and _link(entry / "ns/pid") == ours]
    assert len(found) == 1, f"expected one dockerd in this PID namespace, found {found}"
    return found[0]


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:  # the process ended meanwhile
        return ""


def _link(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:  # the process ended meanwhile
        return ""


def _stop_dockerd() -> None:
    pid = _dockerd_pid()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=120, what="dockerd to stop")


def _start_dockerd() -> None:
    # The same script `make test` uses: it starts dockerd and waits until it is a Swarm manager.
    subprocess.run(["bash", str(ROOT / "scripts/setup-docker.sh")], check=True, capture_output=True, timeout=180)


class FollowedStream:
    """A ``follow=true`` log stream read to its end in a thread; records how it ended."""

    def __init__(self, gateway, function: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=120)
        self.connection.request("GET", f"/system/logs?name={function}&follow=true&tail=1", headers=AUTH)
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        self.lines: list[dict] = []
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            # http.client raises IncompleteRead when a chunked body is cut off without its end.
            for line in self.response.read().splitlines():
                self.lines.append(json.loads(line))
        except Exception as exc:  # noqa: BLE001 - whatever it is, the test reports it
            self.error = exc
        finally:
            self.connection.close()


def test_the_gateway_rides_out_a_docker_daemon_restart(start_gateway, watchdog_image):
    gateway = start_gateway(workers="1", write_timeout="300")
    fn = shared_name("through-restart")
    body = {"service": fn, "image": watchdog_image, "envVars": {"log_interval": "1"}}
    assert call(f"{gateway.url}/system/functions", "POST", body)[0] == 202
    wait_for(lambda: call(f"{gateway.url}/system/logs?name={fn}")[1].count(b"\n") >= 2, what=f"{fn} to log")
    stream = FollowedStream(gateway, fn)

    _stop_dockerd()
    try:
        status, text, _ = call(f"{gateway.url}/healthz")
        assert status == 500 and b"Docker" in text, text
        for method, path, payload in [
            ("GET", "/system/functions", None),
            ("GET", f"/system/function/{fn}", None),
            ("POST", "/system/functions", {**body, "service": name("during")}),
            ("POST", f"/system/scale-function/{fn}", {"serviceName": fn, "replicas": 2}),
            ("GET", "/system/secrets", None),
            ("GET", f"/system/logs?name={fn}", None),
        ]:
            status, text, headers = call(f"{gateway.url}{path}", method, payload)
            assert status == 503, (path, status, text)
            assert headers["Content-Type"].startswith("text/plain") and text.startswith(b"Docker"), text
        assert call(f"{gateway.url}/system/info")[0] == 200
        assert call(f"{gateway.url}/metrics")[0] == 200

        stream.thread.join(30)
        assert not stream.thread.is_alive(), "the log stream did not end when Docker went away"
        assert stream.error is None, f"the log stream ended badly: {stream.error!r}"
        assert stream.lines and all(line["name"] == fn for line in stream.lines)
    finally:
        _start_dockerd()

    # Back: the same gateway process serves every route again.
    wait_for(lambda: call(f"{gateway.url}/healthz")[0] == 200, timeout=60, what="healthz to recover")
    wait_for(lambda: fn in [f["name"] for f in json.loads(call(f"{gateway.url}/system/functions")[1])],
             timeout=60, what="the function list")
    assert call(f"{gateway.url}/system/scale-function/{fn}", "POST", {"serviceName": fn, "replicas": 2})[0] == 202
    # Running, as Swarm reports them: this gateway runs on the host, off the functions' network,
    # so its probes cannot reach the replicas and it never counts them available.
    wait_for(lambda: [i["state"] for i in json.loads(call(f"{gateway.url}/system/function/{fn}/instances")[1])]
             == ["running", "running"], timeout=120, what=f"{fn} to run 2 replicas again")
    wait_for(lambda: call(f"{gateway.url}/system/logs?name={fn}&tail=3")[1].count(b"\n") == 3,
             what="logs after the restart")
    other = name("after")
    assert call(f"{gateway.url}/system/functions", "POST", {**body, "service": other})[0] == 202
    assert call(f"{gateway.url}/system/functions", "DELETE", {"functionName": other})[0] == 200
    assert call(f"{gateway.url}/system/functions", "DELETE", {"functionName": fn})[0] == 200
    assert gateway.process.poll() is None, "the gateway restarted or died"
