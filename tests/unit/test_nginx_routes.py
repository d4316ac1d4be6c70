"""deploy/nginx-routes.sh, nginx's entry point, run by sh with stand-ins for curl, nginx and getent.

The stand-ins record what the script sends (curl's configuration, on stdin, and its arguments) and
serve the tables the test writes, rendered by the gateway's own ``render_routes``, so the lines
the script reads are the real table's. What is checked: the gateway's credentials go in curl's
configuration and never on its command line; a failing fetch is logged once, with curl's reason,
and its recovery once; nginx starts with a line naming the table; each reload is logged with what
changed (pools added, removed, with other tasks; the gateway's address) and a refused table too.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from app.dataplane.route_table import render_routes
from tests.gateway import ROOT

SCRIPT = ROOT / "deploy/nginx-routes.sh"
ROUTES = dict(port=8080, namespace="openfaas-fn", fallback="gateway:8080", upstream_timeout=60)

# curl -fsS --max-time 2 -K - -o FILE URL: answers with the file `table`, or fails as `error` says.
# Its configuration is replaced whole (a rename), so the test never reads one being written; `error`
# is read once, as the test may replace it between a check and a second read.
CURL = """#!/bin/sh
cat >"$STUB_DIR/curl-config.new"
mv "$STUB_DIR/curl-config.new" "$STUB_DIR/curl-config"
echo "$*" >>"$STUB_DIR/curl-args"
error=$(cat "$STUB_DIR/error")
if [ -n "$error" ]; then echo "$error" >&2; exit 22; fi
while [ "$1" != -o ]; do shift; done
cp "$STUB_DIR/table" "$2"
"""
# `nginx -t -q` refuses a table with `refuse-me` in it; `nginx -g 'daemon off;'` runs until
# stopped, says when it is ready for SIGHUP (a HUP before its trap would end it) and records each
# reload, once its current sleep ends. Two HUPs within one sleep would be recorded once, so the
# test sends the next only after the last is recorded.
NGINX = """#!/bin/sh
if [ "$1" = -t ]; then ! grep -q refuse-me "$ROUTES_FILE"; exit; fi
trap 'echo reload >>"$STUB_DIR/nginx.log"' HUP
echo started >>"$STUB_DIR/nginx.log"
while :; do sleep 0.05; done
"""
GETENT = """#!/bin/sh
echo "$(cat "$STUB_DIR/address") STREAM $2"
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


class Routes:
    """The script running against the stand-ins in ``folder``."""

    def __init__(self, folder: Path, secrets: Path, routes: dict[str, list[str]], error: str = ""):
        self.stubs = folder / "bin"
        self.stubs.mkdir()
        for name, text in (("curl", CURL), ("nginx", NGINX), ("getent", GETENT)):
            _executable(self.stubs / name, text)
        self.routes = folder / "routes.conf"
        self.stderr = folder / "stderr"
        self.address("10.0.0.5")
        self.serve(routes, error=error)
        env = dict(os.environ, PATH=f"{self.stubs}:/usr/bin:/bin", STUB_DIR=str(self.stubs),
                   ROUTES_FILE=str(self.routes), SECRETS_DIR=str(secrets))
        with self.stderr.open("wb") as stderr:
            # A session of its own: the stand-in nginx goes with it, whatever happens.
            self.process = subprocess.Popen(["sh", str(SCRIPT)], env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                            start_new_session=True)

    def serve(self, routes: dict[str, list[str]], *, error: str = "", extra: str = "") -> None:
        self._write("table", render_routes(routes, **ROUTES) + extra)
        self._write("error", error)

    def address(self, address: str) -> None:
        self._write("address", address)

    def _write(self, name: str, text: str) -> None:
        # Whole files only: the script may read at any moment.
        (self.stubs / f"{name}.tmp").write_text(text)
        (self.stubs / f"{name}.tmp").rename(self.stubs / name)

    def lines(self) -> list[str]:
        return self.stderr.read_text().splitlines()

    def wait_for_line(self, line: str) -> None:
        self.wait_until(lambda: line in self.lines(), f"no line {line!r}")

    def wait_until(self, predicate, what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.process.poll() is None, self.lines()
            assert time.monotonic() < deadline, f"{what} in {self.lines()}"
            time.sleep(0.05)

    def fetches(self) -> int:
        args = self.stubs / "curl-args"
        return len(args.read_text().splitlines()) if args.exists() else 0

    def _nginx_log(self) -> list[str]:
        log = self.stubs / "nginx.log"
        return log.read_text().splitlines() if log.exists() else []

    def nginx_ready(self) -> bool:
        return "started" in self._nginx_log()

    def reloads(self) -> int:
        return self._nginx_log().count("reload")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def secrets(tmp_path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "basic-auth-user").write_text("admin")
    (folder / "basic-auth-password").write_text("pa ss:w\"o\\rd\n")
    return folder


@pytest.fixture
def start(tmp_path):
    started: list[Routes] = []

    def start(secrets: Path, routes: dict[str, list[str]], error: str = "") -> Routes:
        started.append(Routes(tmp_path, secrets, routes, error))
        return started[-1]

    yield start
    for routes in started:
        routes.stop()


URL = "http://gateway:8080/_/routes"


def test_credentials_go_in_curls_configuration_and_each_reload_says_what_changed(start, secrets):
    routes = start(secrets, {}, error="curl: (22) The requested URL returned error: 401")
    routes.wait_for_line(f"routes: cannot fetch {URL}: curl: (22) The requested URL returned error: 401")
    # A third fetch has begun only once the script has dealt with the second one's failure.
    routes.wait_until(lambda: routes.fetches() >= 3, "no third fetch")
    # Once, not every second.
    assert sum("cannot fetch" in line for line in routes.lines()) == 1
    # The password as the gateway reads it (without the file's newline), on no command line.
    token = base64.b64encode(b'admin:pa ss:w"o\\rd').decode()
    assert (routes.stubs / "curl-config").read_text() == f'header = "Authorization: Basic {token}"\n'
    assert "pa ss" not in (routes.stubs / "curl-args").read_text()

    routes.serve({"echo": ["10.0.1.5", "10.0.1.6"], "old": ["10.0.3.1"]})
    routes.wait_for_line(f"routes: {URL} answers again")
    routes.wait_for_line("routes: starting nginx: + fn_echo (2 tasks), + fn_old (1 task), gateway at 10.0.0.5")
    routes.wait_until(routes.nginx_ready, "the stand-in nginx not ready for SIGHUP")

    routes.serve({"echo": ["10.0.1.6", "10.0.1.7"], "new.team-a": ["10.0.2.1"]})
    routes.wait_for_line(
        "routes: reloading nginx: ~ fn_echo (2 tasks: +10.0.1.7 -10.0.1.5), - fn_old, + fn_new.team-a (1 task)"
    )
    routes.wait_until(lambda: routes.reloads() == 1, "no first reload")
    routes.address("10.0.0.9")
    routes.wait_for_line("routes: reloading nginx: gateway 10.0.0.5 -> 10.0.0.9")
    routes.wait_until(lambda: routes.reloads() == 2, "not two reloads")

    routes.serve({"echo": ["10.0.1.6"]}, extra="# refuse-me\n")
    routes.wait_for_line(
        "routes: nginx refused the new table (~ fn_echo (1 task: -10.0.1.7), - fn_new.team-a, other lines); "
        "keeping the running one"
    )
    assert routes.reloads() == 2


def test_without_the_secrets_no_credentials_are_sent(start, tmp_path):
    routes = start(tmp_path / "no-secrets", {"echo": ["10.0.1.5"]})
    routes.wait_for_line("routes: starting nginx: + fn_echo (1 task), gateway at 10.0.0.5")
    assert (routes.stubs / "curl-config").read_text() == ""
