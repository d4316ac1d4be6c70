"""deploy/nginx-routes.sh, nginx's entry point, run by sh with stand-ins for curl, nginx and getent.

The stand-ins record what the script sends (curl's configuration, on stdin, and its arguments; the
tables it loads into nginx) and serve what the test writes, rendered by the gateway's own
``render_table`` and ``render_config``, so the lines the script reads are the real ones. What is
checked: the gateway's credentials go in curl's configuration and never on its command line; a
failing fetch is logged once, with curl's reason, and its recovery once; nginx starts with a line
naming the gateway; a changed table is loaded without a reload and logged with what changed (pools
added, removed, with other tasks), a refused one once with nginx's reason, and tried again; a
changed configuration (the gateway's address) reloads nginx, and a refused one does not.
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

from app.dataplane.route_table import render_config, render_table
from harness import ROOT
from tests.unit.helpers import CONFIG, TABLE

SCRIPT = ROOT / "deploy/nginx-routes.sh"

# curl -K -: both documents, as the configuration on stdin lists them (url, output, header, ...,
# `next` between them), answered with the files `table` (URL .../table) and `config`: 304 when
# If-None-Match names the file's ETag, else 200 and the file, or the failure `error` says (exit
# code 22, that message), as curl's write-out reports each; `killed` kills it before it says
# anything. The gateway answers from `address`. Each file is replaced whole (a rename), so the
# stand-in never reads one being written.
# curl ... --data-binary @BODY -o ANSWER -w '%{http_code}' URL: nginx's loader. It records each
# body in `loads` (ended by a line `--`) and refuses one with `refuse-me` in it, as nginx would.
CURL = r"""#!/usr/bin/env python3
import hashlib, os, re, sys

stubs = os.environ["STUB_DIR"]


def read(name):
    with open(os.path.join(stubs, name)) as file:
        return file.read()


def append(name, text):
    with open(os.path.join(stubs, name), "a") as file:
        file.write(text)


args = sys.argv[1:]
if "--data-binary" in args:
    body = read(args[args.index("--data-binary") + 1][1:])
    append("loads", body + "--\n")
    with open(args[args.index("-o") + 1], "w") as answer:
        answer.write("line 2: neither a pool nor a name\n" if "refuse-me" in body else "")
    print(400 if "refuse-me" in body else 204, end="")
    sys.exit(0)

config = sys.stdin.read()
with open(os.path.join(stubs, "curl-config.new"), "w") as file:
    file.write(config)
os.rename(os.path.join(stubs, "curl-config.new"), os.path.join(stubs, "curl-config"))
append("curl-args", " ".join(args) + "\n")
operations = [{"header": []}]
for line in config.splitlines():
    key, _, value = line.strip().partition(" = ")
    if key == "next":
        operations.append({"header": []})
    elif value:
        value = re.sub(r'\\(.)', lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), value[1:-1])
        if key == "header":
            operations[-1]["header"].append(value)
        else:
            operations[-1][key] = value
error, address, exit_code = read("error"), read("address"), 0
if error == "killed":
    os.kill(os.getpid(), 9)
for operation in operations:
    text = read("table" if operation["url"].endswith("/table") else "config")
    tag = '"%s"' % hashlib.sha1(text.encode()).hexdigest()
    if error:
        code, status, tag, exit_code = 22, 401, "", 22
    elif "If-None-Match: " + tag in operation["header"]:
        code, status = 0, 304
    else:
        code, status = 0, 200
        with open(operation["output"], "w") as output:
            output.write(text)
    values = {"%{exitcode}": code, "%{http_code}": status, "%header{etag}": tag, "%{remote_ip}": address,
              "%{errormsg}": error if code else ""}
    sys.stdout.write(re.sub(r"%(?:\{\w+\}|header\{etag\})", lambda m: str(values[m[0]]), operation["write-out"]))
sys.exit(exit_code)
"""
# `nginx -t -q` refuses a configuration with `refuse-me` in it; `nginx -g 'daemon off;'` runs until
# stopped, says when it is ready for SIGHUP (a HUP before its trap would end it) and records each
# reload, once its current sleep ends. Two HUPs within one sleep would be recorded once, so the
# test sends the next only after the last is recorded.
NGINX = """#!/bin/sh
if [ "$1" = -t ]; then ! grep -q refuse-me "$ROUTES_FILE"; exit; fi
trap 'echo reload >>"$STUB_DIR/nginx.log"' HUP
echo started >>"$STUB_DIR/nginx.log"
while :; do sleep 0.05; done
"""
# getent ahostsv4 NAME: the address in `address`, each lookup recorded in `lookups`.
GETENT = """#!/bin/sh
echo "$2" >>"$STUB_DIR/lookups"
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
        self.table = folder / "routes.table"
        self.stderr = folder / "stderr"
        self.address("10.0.0.5")
        self.serve(routes, error=error)
        env = dict(os.environ, PATH=f"{self.stubs}:/usr/bin:/bin", STUB_DIR=str(self.stubs),
                   ROUTES_FILE=str(self.routes), TABLE_FILE=str(self.table), SECRETS_DIR=str(secrets))
        with self.stderr.open("wb") as stderr:
            # A session of its own: the stand-in nginx goes with it, whatever happens.
            self.process = subprocess.Popen(["sh", str(SCRIPT)], env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                            start_new_session=True)

    def serve(self, routes: dict[str, list[str]], *, error: str = "", table_extra: str = "",
              config_extra: str = "") -> None:
        self._write("table", render_table(routes, **TABLE) + table_extra)
        self._write("config", render_config(**CONFIG) + config_extra)
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

    def loads(self) -> list[str]:
        """The tables loaded into nginx, in order."""
        loads = self.stubs / "loads"
        return loads.read_text().split("--\n")[:-1] if loads.exists() else []

    def lookups(self) -> int:
        lookups = self.stubs / "lookups"
        return len(lookups.read_text().splitlines()) if lookups.exists() else 0

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


def test_credentials_go_in_curls_configuration_and_each_change_says_what_changed(start, secrets):
    routes = start(secrets, {}, error="The requested URL returned error: 401")
    routes.wait_for_line(f"routes: cannot fetch {URL}/table: curl: (22) The requested URL returned error: 401")
    # A third fetch has begun only once the script has dealt with the second one's failure.
    routes.wait_until(lambda: routes.fetches() >= 3, "no third fetch")
    # Once, not every second.
    assert sum("cannot fetch" in line for line in routes.lines()) == 1
    # The password as the gateway reads it (without the file's newline), on no command line.
    token = base64.b64encode(b'admin:pa ss:w"o\\rd').decode()
    config = (routes.stubs / "curl-config").read_text()
    assert config.count(f'header = "Authorization: Basic {token}"\n') == 2
    # The gateway may hold the table's request until it changes, and curl waits longer than that.
    table_operation = config.split("\nnext\n")[0]
    assert 'header = "Prefer: wait=5"\n' in table_operation and "max-time = 7\n" in table_operation
    assert "Prefer" not in config.split("\nnext\n")[1]
    assert "pa ss" not in (routes.stubs / "curl-args").read_text()

    routes.serve({"echo": ["10.0.1.5", "10.0.1.6"], "old": ["10.0.3.1"]})
    routes.wait_for_line(f"routes: {URL}/table answers again")
    routes.wait_for_line("routes: starting nginx: gateway at 10.0.0.5")
    routes.wait_until(routes.nginx_ready, "the stand-in nginx not ready for SIGHUP")
    routes.wait_for_line("routes: loaded the table: + fn_echo (2 tasks), + fn_old (1 task)")
    assert routes.loads() == [(routes.stubs / "table").read_text()]

    # A new table is loaded, never reloaded: a reload would close the clients' idle connections.
    routes.serve({"echo": ["10.0.1.6", "10.0.1.7"], "new.team-a": ["10.0.2.1"]})
    routes.wait_for_line("routes: loaded the table: ~ fn_echo (2 tasks: +10.0.1.7 -10.0.1.5), - fn_old, "
                         "+ fn_new.team-a (1 task)")
    assert len(routes.loads()) == 2 and routes.reloads() == 0
    # Unchanged, neither document is sent again (304), nor the table loaded, nor the gateway's name
    # looked up: each round is one curl.
    fetched, lookups = routes.fetches(), routes.lookups()
    routes.wait_until(lambda: routes.fetches() >= fetched + 2, "no two more rounds")
    assert len(routes.loads()) == 2 and routes.lookups() == lookups

    # A table nginx refuses: its reason logged once, and tried again until one is taken.
    routes.serve({"echo": ["10.0.1.6"]}, table_extra="refuse-me\n")
    refused = "routes: nginx did not take the table (HTTP 400): line 2: neither a pool nor a name"
    routes.wait_until(lambda: len(routes.loads()) >= 4, "no second try of the refused table")
    assert routes.lines().count(refused) == 1
    routes.serve({"echo": ["10.0.1.6"]})
    routes.wait_for_line("routes: loaded the table: ~ fn_echo (1 task: -10.0.1.7), - fn_new.team-a")

    # The gateway's address is nginx's configuration: that reloads.
    routes.address("10.0.0.9")
    routes.wait_for_line("routes: reloading nginx: gateway 10.0.0.5 -> 10.0.0.9")
    routes.wait_until(lambda: routes.reloads() == 1, "no reload")
    routes.serve({"echo": ["10.0.1.6"]}, config_extra="refuse-me\n")
    refused = "routes: nginx refused the new configuration (other lines); keeping the running one"
    routes.wait_for_line(refused)
    fetched = routes.fetches()
    routes.wait_until(lambda: routes.fetches() >= fetched + 2, "no two more rounds")
    assert routes.lines().count(refused) == 1 and routes.reloads() == 1


def test_without_the_secrets_no_credentials_are_sent(start, tmp_path):
    routes = start(tmp_path / "no-secrets", {"echo": ["10.0.1.5"]})
    routes.wait_for_line("routes: starting nginx: gateway at 10.0.0.5")
    routes.wait_for_line("routes: loaded the table: + fn_echo (1 task)")
    assert "Authorization" not in (routes.stubs / "curl-config").read_text()


def test_a_curl_that_ends_without_an_answer_is_a_failed_round(start, secrets):
    routes = start(secrets, {"echo": ["10.0.1.5"]})
    routes.wait_for_line("routes: loaded the table: + fn_echo (1 task)")
    routes.serve({"echo": ["10.0.1.5"]}, error="killed")
    routes.wait_for_line(f"routes: cannot fetch {URL}: curl: ended without an answer")
    routes.serve({"echo": ["10.0.1.6"]})
    routes.wait_for_line(f"routes: {URL} answers again")
    routes.wait_for_line("routes: loaded the table: ~ fn_echo (1 task: +10.0.1.6 -10.0.1.5)")
