"""The real `faas-cli` (0.16.37, from $OPENFAAS_BIN_DIR, by default ../shared/bin, or PATH) against
the stack `make up` starts.

Every command a user runs, with the output a person reads: login, deploy with flags and with a
stack file, ready, list, describe, invoke (sync and async), logs, secrets, namespaces, remove.
HOME is a folder of the test's own (faas-cli keeps its login in ~/.openfaas/config.yml), and
every command runs in a folder without a stack.yml: faas-cli reads ./stack.yml when it exists,
even for `deploy --name`. Every function and secret is named with the run's prefix, so the
cleanup fixtures remove them whatever happens.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.faascli import FaasCli, Result
from tests.swarm import name
from tests.waiting import wait_for

NAMESPACE = "openfaas-fn"
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)"


def _deploy(cli: FaasCli, image: str, fn: str, *flags: str) -> Result:
    result = cli.ok("deploy", "--image", image, "--name", fn, *flags)
    assert re.search(r"^Deployed\. 202 Accepted\.$", result.out, re.M | re.I), str(result)
    assert f"URL: {cli.gateway}/function/{fn}" in result.out, str(result)
    return result


def _described_when(cli: FaasCli, fn: str, field: str, value: str, timeout: float = 90) -> dict[str, str]:
    """`describe` once it shows ``field: value`` (counters and replicas change after the call)."""

    def shown():
        described = cli.describe(fn)
        return described if described[field] == value else None

    return wait_for(shown, timeout=timeout, what=f"describe {fn} to show {field}: {value}")


def test_login_with_password_stdin(stack, faas_cli_binary, tmp_path):
    cli = FaasCli(faas_cli_binary, stack.url, tmp_path)

    before = cli.run("list")
    assert before.rc != 0
    assert 'unauthorized access, run "faas-cli login"' in before.text.lower(), str(before)

    wrong = cli.login(stack.user, "not-the-password")
    assert wrong.rc != 0
    assert "username or password is incorrect" in wrong.text, str(wrong)
    assert not (tmp_path / ".openfaas" / "config.yml").exists()

    right = cli.login(stack.user, stack.password)
    assert right.rc == 0, str(right)
    assert f"credentials saved for {stack.user} {stack.url}" in right.out, str(right)
    config = (tmp_path / ".openfaas" / "config.yml").read_text()
    assert f"gateway: {stack.url}" in config and "auth: basic" in config
    assert stack.password not in config

    header, _ = cli.listed()
    assert header == ["Function", "Invocations", "Replicas"]


def test_namespace_list(cli):
    result = cli.ok("namespace", "list")
    # Other tests (and other gateways on this Swarm) may hold namespaces of their own meanwhile.
    lines = result.out.splitlines()
    assert lines[0] == "Namespaces:" and f" - {NAMESPACE}" in lines[1:], str(result)


def test_deploy_with_every_flag_then_list_describe_invoke_remove(cli, watchdog_image):
    fn, secret = name("cli-env"), name("cli-env-secret")
    cli.ok("secret", "create", secret, "--from-literal", "s3cret")
    _deploy(
        cli, watchdog_image, fn,
        "--fprocess", "env",
        "--secret", secret,
        "--label", "team=blue",
        "--annotation", "topic=faas-cli",
        "--env", "greeting=hello",
        "--constraint", "node.role==manager",
    )
    cli.ready(fn)

    header, rows = cli.listed()
    assert header == ["Function", "Invocations", "Replicas"]
    assert rows[fn] == [fn, "0", "1"]
    header, rows = cli.listed("-v")
    assert header == ["Function", "Image", "Invocations", "Replicas", "CreatedAt"]
    assert rows[fn][:4] == [fn, watchdog_image, "0", "1"]

    described = cli.describe(fn)
    assert described["Name"] == fn
    assert described["Status"] == "Ready"
    assert described["Replicas"] == "1" and described["Available Replicas"] == "1"
    assert described["Invocations"] == "0"
    assert described["Image"] == watchdog_image
    assert described["Function Process"] == "env"
    assert described["URL"] == f"{cli.gateway}/function/{fn}"
    assert described["Async URL"] == f"{cli.gateway}/async-function/{fn}"
    text = described[""]
    assert re.search(r"^Labels:\n(?: .+\n)* team: blue$", text, re.M), text
    assert re.search(r"^Annotations:\n(?: .+\n)* topic: faas-cli$", text, re.M), text
    assert re.search(r"^Constraints:\n - node.role==manager$", text, re.M), text
    assert re.search(r"^Environment:\n(?: .+\n)* greeting: hello$", text, re.M), text
    assert re.search(rf"^Secrets:\n - {secret}$", text, re.M), text
    assert "s3cret" not in text

    invoked = cli.ok(
        "invoke", fn, "--method", "PUT", "--query", "q1=v1", "--query", "q2=v2", "-H", "X-Test-Header=abc",
        stdin="body",
    )
    variables = invoked.out.splitlines()
    for expected in ("greeting=hello", "Http_Method=PUT", "Http_Query=q1=v1&q2=v2", "Http_X_Test_Header=abc"):
        assert expected in variables, str(invoked)
    invoked = cli.ok("invoke", fn, "--method", "GET", stdin="")
    assert "Http_Method=GET" in invoked.out.splitlines(), str(invoked)

    _described_when(cli, fn, "Invocations", "2")
    assert cli.listed()[1][fn] == [fn, "2", "1"]

    removed = cli.ok("remove", fn)
    assert removed.out.splitlines() == [f"Deleting: {fn}.", "Removing old function."], str(removed)
    assert fn not in cli.listed()[1]
    again = cli.run("remove", fn)
    assert again.rc != 0 and "No existing function to remove" in again.text, str(again)


def test_unknown_function_is_named_in_the_error(cli):
    fn = name("cli-missing")
    described = cli.run("describe", fn)
    assert described.rc != 0 and f"No such function: {fn}" in described.text, str(described)
    invoked = cli.run("invoke", fn, stdin="x")
    assert invoked.rc != 0 and "404" in invoked.text and fn in invoked.text, str(invoked)
    not_ready = cli.run("ready", fn, "--attempts", "2", "--interval", "100ms")
    assert not_ready.rc != 0 and f"Function {fn} not ready" in not_ready.text, str(not_ready)


def test_refused_deploys_say_why(cli, watchdog_image):
    fn, secret = name("cli-refused"), name("cli-never-created")
    no_secret = cli.run("deploy", "--image", watchdog_image, "--name", fn, "--secret", secret)
    assert no_secret.rc != 0, str(no_secret)
    assert f"Unexpected status: 404, message: Secret {secret} not found" in no_secret.text, str(no_secret)
    bad_name = cli.run("deploy", "--image", watchdog_image, "--name", "Not_A-Name")
    assert bad_name.rc != 0, str(bad_name)
    assert "Unexpected status: 400, message: " in bad_name.text and "Not_A-Name" in bad_name.text, str(bad_name)
    assert fn not in cli.listed()[1]


def test_invoke_prints_the_body(cli, watchdog_image):
    fn = name("cli-cat")
    _deploy(cli, watchdog_image, fn, "--fprocess", "cat")
    cli.ready(fn)
    body = "hello from faas-cli\nsecond line\n"
    assert cli.ok("invoke", fn, stdin=body).out == body


def test_invoke_async_is_accepted_and_then_run(cli, watchdog_image):
    fn = name("cli-async")
    _deploy(cli, watchdog_image, fn, "--fprocess", "cat")
    cli.ready(fn)
    accepted = cli.ok("invoke", fn, "--async", stdin="later")
    # faas-cli 0.16.37 prints this one line for a 202 and nothing else (no call id).
    assert accepted.err == "Function submitted asynchronously.\n", str(accepted)
    assert accepted.out == ""
    # The gateway's worker calls the function afterwards: its invocation shows up.
    _described_when(cli, fn, "Invocations", "1")

    missing = cli.run("invoke", name("cli-async-missing"), "--async", stdin="x")
    assert missing.rc != 0 and "404" in missing.text, str(missing)


def _log_lines(cli: FaasCli, fn: str, *flags: str) -> list[str]:
    result = cli.ok("logs", fn, "--tail=false", *flags)
    lines = result.out.splitlines()
    for line in lines:
        assert re.match(rf"^{TIMESTAMP}( |$)", line), str(result)
    return lines


def _settled_logs(cli: FaasCli, fn: str, at_least: int) -> list[str]:
    """All the function's log lines, once there are ``at_least`` and two readings agree."""
    previous: list[list[str]] = [[]]

    def settled():
        lines = _log_lines(cli, fn)
        same = lines == previous[0]
        previous[0] = lines
        return lines if same and len(lines) >= at_least else None

    return wait_for(settled, timeout=60, what=f"{at_least} settled log lines of {fn}")


def test_logs_lines_and_since(cli, watchdog_image):
    fn = name("cli-logs")
    _deploy(cli, watchdog_image, fn, "--fprocess", "cat")
    cli.ready(fn)

    # Every call logs at least one line (the watchdog's own), so 5 calls give 5 lines or more.
    for number in range(5):
        assert cli.ok("invoke", fn, stdin=f"call {number}").out == f"call {number}"
    first = _settled_logs(cli, fn, 5)

    last_three = _log_lines(cli, fn, "--lines", "3")
    assert last_three == first[-3:]
    assert _log_lines(cli, fn, "--lines", "1") == first[-1:]

    # --since: a gap of 2.5 s between two batches of calls, and a duration that ends in its middle
    # (faas-cli sends whole seconds, so the middle must be more than a second from either side).
    gap_start = time.time()
    wait_for(lambda: time.time() >= gap_start + 2.5, timeout=5, interval=0.1, what="a gap in the log")
    for number in range(3):
        cli.ok("invoke", fn, stdin=f"later {number}")
    both = _settled_logs(cli, fn, len(first) + 3)
    assert both[:len(first)] == first
    since = time.time() - (gap_start + 1.25)
    recent = _log_lines(cli, fn, "--since", f"{since:.3f}s")
    assert recent == both[len(first):], f"--since {since:.3f}s\n" + "\n".join(recent)
    assert _log_lines(cli, fn, "--since", "1h") == both

    missing = cli.run("logs", name("cli-logs-missing"), "--tail=false")
    assert missing.rc != 0 and "404" in missing.text, str(missing)


def test_logs_follow_prints_new_lines_as_they_come(cli, watchdog_image):
    fn = name("cli-follow")
    _deploy(cli, watchdog_image, fn, "--fprocess", "cat")
    cli.ready(fn)
    assert cli.ok("invoke", fn, stdin="before").out == "before"
    before = _settled_logs(cli, fn, 1)

    # `faas-cli logs NAME` follows (--tail defaults to true) until the gateway's write_timeout.
    follower = subprocess.Popen(**cli.command("logs", fn), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in follower.stdout], daemon=True)
    reader.start()
    try:
        seen = [lines.get(timeout=30) for _ in before]
        assert seen == before
        assert cli.ok("invoke", fn, stdin="after").out == "after"
        fresh = lines.get(timeout=30)
        assert re.match(rf"^{TIMESTAMP}( |$)", fresh), fresh
        assert follower.poll() is None, "faas-cli logs stopped following"
    finally:
        follower.kill()
        follower.wait(timeout=10)
        reader.join(timeout=10)


def test_secret_create_conflict_list_update_remove(cli, watchdog_image):
    secret, fn = name("cli-secret"), name("cli-secret-reader")

    created = cli.ok("secret", "create", secret, "--from-literal", "first-value")
    assert created.out.splitlines()[0] == f"Creating secret: {secret}.", str(created)
    assert re.search(r"^Created: 201 Created$", created.out, re.M | re.I), str(created)

    # faas-cli 0.16.37 exits 0 here whatever the gateway answers (runSecretCreate returns nil
    # after printing); the 409 is what makes it print this sentence.
    conflict = cli.run("secret", "create", secret, "--from-literal", "other-value")
    assert f'secret with the name "{secret}" already exists' in conflict.text, str(conflict)

    listed = cli.ok("secret", "list")
    assert "NAME" in listed.out.split() and secret in listed.out.split(), str(listed)
    assert "first-value" not in listed.out

    # The value reaches a function that mounts it, and an update rolls it onto that function.
    _deploy(cli, watchdog_image, fn, "--secret", secret, "--fprocess", f"cat /var/openfaas/secrets/{secret}")
    cli.ready(fn)
    assert cli.ok("invoke", fn, stdin="").out == "first-value"
    updated = cli.ok("secret", "update", secret, "--from-literal", "second-value")
    assert updated.out.splitlines() == [f"Updating secret: {secret}", "Updated: 200 OK"], str(updated)
    wait_for(lambda: cli.run("invoke", fn, stdin="").out == "second-value", timeout=90,
             what=f"{fn} to read the updated secret")
    unknown = cli.run("secret", "update", name("cli-no-secret"), "--from-literal", "x")
    assert f"unable to find secret: {name('cli-no-secret')}" in unknown.text.lower(), str(unknown)

    in_use = cli.run("secret", "remove", secret)
    assert in_use.rc != 0 and "409" in in_use.text and fn in in_use.text, str(in_use)

    cli.ok("remove", fn)
    removed = cli.run("secret", "remove", secret)
    assert removed.rc == 0, str(removed)
    assert removed.out.splitlines() == ["Removed.. OK."], str(removed)
    assert secret not in cli.ok("secret", "list").out.split()
    again = cli.run("secret", "remove", secret)
    assert again.rc != 0 and f"Unable to find secret: {secret}" in again.text, str(again)


def _stack_file(folder: Path, gateway: str, image: str, functions: tuple[str, str], mode: str) -> Path:
    scaled, plain = functions
    path = folder / "stack.yml"
    path.write_text(
        "version: 1.0\n"
        "provider:\n"
        "  name: openfaas\n"
        f"  gateway: {gateway}\n"
        "functions:\n"
        f"  {scaled}:\n"
        f"    image: {image}\n"
        "    fprocess: env\n"
        "    labels:\n"
        '      com.openfaas.scale.min: "2"\n'
        '      com.openfaas.scale.max: "4"\n'
        "    environment:\n"
        f"      deploy_mode: {mode}\n"
        f"  {plain}:\n"
        f"    image: {image}\n"
        "    fprocess: cat\n"
    )
    return path


def test_deploy_and_remove_with_a_stack_file(cli, watchdog_image, tmp_path):
    scaled, plain = name("cli-stack-env"), name("cli-stack-cat")
    stack_yml = _stack_file(tmp_path, cli.gateway, watchdog_image, (scaled, plain), "first")

    # faas-cli deploy only deploys: it neither builds nor pulls (the image exists only here).
    deployed = cli.ok("deploy", "-f", str(stack_yml))
    for fn in (scaled, plain):
        assert re.search(rf"^Deploying: {fn}\.\n\nDeployed\. 202 Accepted\.\nURL: {re.escape(cli.gateway)}/function/{fn}$",
                         deployed.out, re.M | re.I), str(deployed)
    cli.ready(scaled)
    cli.ready(plain)

    # com.openfaas.scale.min gives two replicas from the start.
    described = _described_when(cli, scaled, "Available Replicas", "2")
    assert described["Replicas"] == "2" and described["Function Process"] == "env"
    assert re.search(r"^Labels:\n(?: .+\n)* com.openfaas.scale.min: 2$", described[""], re.M), described[""]
    assert re.search(r"^Environment:\n deploy_mode: first$", described[""], re.M), described[""]
    assert "deploy_mode=first" in cli.ok("invoke", scaled, stdin="").out.splitlines()
    assert cli.ok("invoke", plain, stdin="from the stack").out == "from the stack"
    rows = cli.listed()[1]
    assert rows[scaled][2] == "2" and rows[plain][2] == "1"

    # Deploying the file again updates both in place, and the new environment arrives.
    _stack_file(tmp_path, cli.gateway, watchdog_image, (scaled, plain), "second")
    redeployed = cli.ok("deploy", "-f", str(stack_yml))
    for fn in (scaled, plain):
        assert f"Function {fn} already exists, attempting rolling-update." in redeployed.out, str(redeployed)
    assert len(re.findall(r"^Deployed\. 200 OK\.$", redeployed.out, re.M | re.I)) == 2, str(redeployed)
    wait_for(lambda: "deploy_mode=second" in cli.run("invoke", scaled, stdin="").out.splitlines(),
             timeout=90, what=f"{scaled} to run with the new environment")
    assert cli.describe(scaled)["Replicas"] == "2"

    # faas-cli walks the file's functions as a Go map: in any order.
    removed = cli.ok("remove", "-f", str(stack_yml))
    lines = removed.out.splitlines()
    assert sorted(zip(lines[::2], lines[1::2])) == sorted(
        [(f"Deleting: {fn}.", "Removing old function.") for fn in (scaled, plain)]
    ), str(removed)
    assert len(lines) == 4, str(removed)
    rows = cli.listed()[1]
    assert scaled not in rows and plain not in rows
    # Nothing left to remove: faas-cli says nothing more than the names (and exits 0).
    again = cli.ok("remove", "-f", str(stack_yml))
    assert "Removing old function." not in again.out, str(again)
