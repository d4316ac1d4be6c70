"""Changes without a dropped call, on the stack `make up` starts, under real load through nginx.

A function of the classic watchdog at two replicas answers its version (``echo v1``); 16 clients
call it in a loop (harness.cluster.Load, each on a kept-alive connection) while faas-cli rolls a
new version out (new env, a new image, a new secret value), or one that never gets ready, or
while it is scaled down or deleted. The
function's readiness probe is ``GET /``, which runs the function itself, so a version that fails
its calls is not ready. ``drain=1`` lets the watchdog get Swarm's SIGTERM and drain as it does in
a real function image (images/watchdog/entrypoint.sh).

Switches tried: routing to every running replica whatever its probes say (``routable`` ignoring
``ready``) fails calls in the rolling update and flips answers back; no rollback
(``_judge_update`` returning early) leaves the failing version live; a stop grace period of 0
fails the calls in flight of a replica scaled away or deleted.
"""

from __future__ import annotations

import json
import re
import threading
import types

import requests

from harness.cluster import Events, Load
from tests.e2e.faascli import FaasCli
from tests.e2e.stack import auth, function_containers, routed_by_nginx
from tests.gateway import call
from tests.swarm import CLASSIC_IMAGE, OF_WATCHDOG_IMAGE, name
from tests.waiting import wait_for

# A new version that fails its calls for its first 3 s, as one warming up: only its readiness
# probe keeps calls away meanwhile (the watchdog writes /tmp/.lock when it starts).
WARMING_UP = "test $(($(date +%s) - $(stat -c %Y /tmp/.lock))) -ge 3 || exit 1; "
PROBE_LABELS = {
    "com.openfaas.ready.http.path": "/",
    "com.openfaas.ready.http.periodSeconds": "1",
}


def deploy(cli: FaasCli, fn: str, handler: str, replicas: int = 2, slow: bool = False,
           image: str = CLASSIC_IMAGE, secret: str | None = None) -> None:
    """faas-cli deploy (a rolling update when ``fn`` exists) of ``handler`` at ``replicas``,
    which the autoscaler leaves alone (min = max). Its readiness probe calls the function, and
    its write_timeout (also how long a stopping watchdog keeps serving) is 4 s, unless ``slow``:
    calls of seconds, longer than the 2 s Swarm waits before it stops a replica, so only the
    drain saves them; then the probe is the watchdog's /_/health and write_timeout 10 s."""
    labels = {**({} if slow else PROBE_LABELS),
              "com.openfaas.scale.min": str(replicas), "com.openfaas.scale.max": str(replicas)}
    env = {"drain": "1", "write_timeout": "10s" if slow else "4s", "handler": handler}
    flags = [f"--label={key}={value}" for key, value in labels.items()]
    flags += [f"--env={key}={value}" for key, value in env.items()]
    flags += [f"--secret={secret}"] if secret else []
    cli.ok("deploy", "--image", image, "--name", fn, *flags)


def status(stack, fn: str) -> dict:
    code, body, _ = call(f"{stack.url}/system/function/{fn}", headers=auth(stack))
    assert code == 200, body
    return json.loads(body)


def settled(stack, fn: str, replicas: int) -> dict | None:
    """The function's status once its update is over, every replica is ready and the replaced
    ones are gone; None before."""
    current = status(stack, fn)
    done = (current.get("rollout") or {}).get("state") in (None, "completed", "rolled_back")
    code, body, _ = call(f"{stack.url}/system/function/{fn}/instances", headers=auth(stack))
    ready = code == 200 and [i["ready"] for i in json.loads(body) if i["state"] == "running"] == [True] * replicas
    if done and ready and current["availableReplicas"] == replicas and len(function_containers(fn)) == replicas:
        return current
    return None


def start_load(stack, fn: str, warm: int = 200) -> Load:
    """16 clients calling ``fn`` in a loop, once ``warm`` calls were made."""
    load = Load(f"{stack.url}/function/{fn}", clients=16, limit=240, timeout=30).start()
    wait_for(lambda: len(load.outcomes) > warm, timeout=60, what="the load to run")
    return load


def calls_after(load: Load, more: int) -> None:
    """Wait until the load made ``more`` calls after now."""
    seen = len(load.outcomes)
    wait_for(lambda: len(load.outcomes) >= seen + more, timeout=60, what=f"{more} more calls")


def rolls_over(stack, fn: str, change, old: str, new: str) -> dict:
    """Under load, ``change()`` the function, whose answers go from ``old`` to ``new``; check
    that no call failed and that each client got ``old`` until its first ``new``, then ``new``
    only. Returns the status once the update is over."""
    wait_for(lambda: settled(stack, fn, 2), timeout=120, what=f"{fn} to be ready")
    wait_for(lambda: routed_by_nginx(stack, fn), timeout=30, what=f"nginx to route {fn}")
    load = start_load(stack, fn)
    try:
        change()
        after = wait_for(lambda: settled(stack, fn, 2), timeout=180, what="the update to be over")
        calls_after(load, 500)
    finally:
        load.stop()
    assert load.failures() == [], f"{len(load.failures())} of {len(load.outcomes)} failed: {load.failures()[:5]}"
    for answers in load.answers():
        assert re.fullmatch(rf"({old},)*({new},)+", "".join(f"{answer}," for answer in answers)), answers
    return after


def test_a_rolling_update_under_load_fails_no_call_and_never_answers_the_old_version_again(stack, cli):
    fn = name("roll")
    deploy(cli, fn, "echo v1")
    after = rolls_over(stack, fn, lambda: deploy(cli, fn, WARMING_UP + "echo v2"), "v1", "v2")
    assert after["envVars"]["handler"] == WARMING_UP + "echo v2" and after["rollout"]["state"] == "completed"


def test_a_new_image_rolls_out_the_same_way(stack, cli):
    fn = name("roll-image")
    handler = "echo ${mode:-classic}"  # the of-watchdog image sets mode=http
    deploy(cli, fn, handler)
    after = rolls_over(stack, fn, lambda: deploy(cli, fn, handler, image=OF_WATCHDOG_IMAGE), "classic", "http")
    assert after["image"] == OF_WATCHDOG_IMAGE


def test_a_new_secret_value_rolls_out_the_same_way(stack, cli):
    fn, secret = name("roll-secret"), name("roll-secret-value")
    cli.ok("secret", "create", secret, "--from-literal", "v1")
    deploy(cli, fn, f"cat /var/openfaas/secrets/{secret}", secret=secret)
    rolls_over(stack, fn, lambda: cli.ok("secret", "update", secret, "--from-literal", "v2"), "v1", "v2")


def test_an_update_that_never_gets_ready_is_rolled_back_by_itself_failing_no_call(stack, cli):
    fn = name("rollback")
    deploy(cli, fn, "echo v1")
    before = wait_for(lambda: settled(stack, fn, 2), timeout=120, what=f"{fn} to be ready")
    wait_for(lambda: routed_by_nginx(stack, fn), timeout=30, what=f"nginx to route {fn}")
    session = requests.Session()
    session.auth = (stack.user, stack.password)
    events = Events(types.SimpleNamespace(session=session, url=stack.url), f"?function={fn}")
    load = start_load(stack, fn)
    try:
        deploy(cli, fn, "echo broken >&2; exit 1")
        wait_for(lambda: (status(stack, fn).get("rollout") or {}).get("state") == "rolled_back", timeout=120,
                 what="the update to be rolled back")
        after = wait_for(lambda: settled(stack, fn, 2), timeout=180, what="the rollback to be over")
        calls_after(load, 500)
    finally:
        load.stop()
        events.close()
    assert load.failures() == [], f"{len(load.failures())} of {len(load.outcomes)} failed: {load.failures()[:5]}"
    assert {answer for answers in load.answers() for answer in answers} == {"v1"}
    # The previous spec again, and why.
    for field in ("image", "envVars", "labels", "annotations", "secrets", "constraints"):
        assert after.get(field) == before.get(field), field
    assert after["rollout"]["message"].startswith("no new replica became ready within 5s (readiness probe GET /")
    rolled_back = [data for kind, data in events.events if kind == "update.rolled_back"]
    assert len(rolled_back) == 1 and rolled_back[0]["message"] == after["rollout"]["message"], events.events


def test_replicas_removed_by_a_scale_down_finish_their_calls(stack, cli):
    fn = name("drain")
    deploy(cli, fn, "sleep 3; echo ok", replicas=3, slow=True)
    wait_for(lambda: settled(stack, fn, 3), timeout=120, what=f"{fn} to be ready")
    wait_for(lambda: routed_by_nginx(stack, fn), timeout=30, what=f"nginx to route {fn}")
    load = start_load(stack, fn, warm=16)
    try:
        code, body, _ = call(f"{stack.url}/system/scale-function/{fn}", "POST", {"replicas": 1}, auth(stack))
        assert code == 202, body
        wait_for(lambda: len(function_containers(fn)) == 1, timeout=120, what="two replicas to stop")
        calls_after(load, 32)
    finally:
        load.stop()
    assert load.failures() == [], f"{len(load.failures())} of {len(load.outcomes)} failed: {load.failures()[:5]}"


def test_calls_in_flight_when_a_function_is_deleted_finish(stack, cli):
    fn = name("delete")
    # 3 s: past Swarm's 2 s before it stops a replica, within the stack's upstream_timeout of 5 s.
    deploy(cli, fn, "echo started > /proc/1/fd/1; sleep 3; echo done", replicas=2, slow=True)
    wait_for(lambda: settled(stack, fn, 2), timeout=120, what=f"{fn} to be ready")
    wait_for(lambda: routed_by_nginx(stack, fn), timeout=30, what=f"nginx to route {fn}")
    answers: list[tuple[int, str]] = []

    def one_call():
        response = requests.post(f"{stack.url}/function/{fn}", data=b"x", timeout=60)
        answers.append((response.status_code, response.text.strip()))

    threads = [threading.Thread(target=one_call) for _ in range(8)]
    for thread in threads:
        thread.start()

    def started() -> bool:
        code, body, _ = call(f"{stack.url}/system/logs?name={fn}", headers=auth(stack))
        return code == 200 and body.count(b"started") >= 8

    wait_for(started, timeout=30, what="8 calls to be in flight")
    assert call(f"{stack.url}/system/functions", "DELETE", {"functionName": fn}, auth(stack))[0] == 200
    for thread in threads:
        thread.join(60)
    assert answers == [(200, "done")] * 8
