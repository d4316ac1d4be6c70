"""Async calls a person can follow, cancel and replay, through nginx on the real stack with each
queue backend; per-function retries; and a cron function run on its schedule by faas-cli's
annotations."""

from __future__ import annotations

import json

from tests.e2e.stack import auth, deploy, invoke
from tests.gateway import call
from tests.swarm import shared_name
from tests.waiting import wait_for


def _record(stack, call_id: str) -> dict:
    status, text, _ = call(f"{stack.url}/system/async-calls/{call_id}", headers=auth(stack))
    assert status == 200, text
    return json.loads(text)


def _state_is(stack, call_id: str, state: str):
    return lambda: _record(stack, call_id)["state"] == state


def _accept(stack, fn: str, call_id: str) -> None:
    status, headers, body = invoke(stack, f"/async-function/{fn}", "POST", b"x", {"X-Call-Id": call_id})
    assert status == 202 and headers["X-Call-Id"] == call_id, body


def test_a_call_is_followed_cancelled_and_replayed(backend):
    stack = backend
    kind = stack.env.get("ASYNC_QUEUE", "sqlite")[:5]
    fn = shared_name(f"steer-{kind}")
    # One call at a time, across the gateway's workers: the second and third wait in the queue.
    deploy(stack, fn, "sleep 2; echo done", labels={"com.openfaas.queue.max_inflight": "1"})
    first, second, third = (f"{fn}-{n}" for n in range(3))
    for call_id in (first, second, third):
        _accept(stack, fn, call_id)
    wait_for(_state_is(stack, first, "running"), timeout=30, interval=0.2, what=f"{first} to run")
    assert _record(stack, third)["state"] == "queued"

    assert invoke(stack, f"/async-function/{third}", "DELETE")[0] == 401, "a cancel needs the credentials"
    status, text, _ = call(f"{stack.url}/async-function/{third}", "DELETE", headers=auth(stack))
    assert status == 202 and json.loads(text)["state"] == "cancelled", text
    status, text, _ = call(f"{stack.url}/async-function/{first}", "DELETE", headers=auth(stack))
    assert status == 409 and b"it is running" in text, text

    wait_for(_state_is(stack, second, "succeeded"), timeout=60, interval=0.5, what=f"{second} to succeed")
    done = _record(stack, first)
    assert (done["state"], done["attempts"], done["statusCode"]) == ("succeeded", 1, 200), done
    assert done["result"]["body"] == "done\n" and done["durationSeconds"] >= 2, done
    cancelled = _record(stack, third)
    assert (cancelled["state"], cancelled["startedAt"], cancelled["result"]) == ("cancelled", None, None), cancelled

    status, text, _ = call(f"{stack.url}/system/async-calls/{third}/retry", "POST", headers=auth(stack))
    assert status == 202, text
    wait_for(_state_is(stack, third, "succeeded"), timeout=60, interval=0.5, what=f"{third} to run when replayed")
    assert [run["state"] for run in _record(stack, third)["history"]] == ["cancelled"]

    status, text, _ = call(f"{stack.url}/system/async-calls?function={fn}&limit=2", headers=auth(stack))
    page = json.loads(text)
    assert [record["callId"] for record in page["calls"]] == [third, second] and page["next"], text


def test_a_function_s_retry_labels_decide_its_tries(stack):
    fn = shared_name("retry-labels")
    # Fails every time: two tries in all, a tenth of a second apart, then the failure is final.
    deploy(stack, fn, "echo no; exit 1", labels={
        "com.openfaas.retry.attempts": "2", "com.openfaas.retry.codes": "500", "com.openfaas.retry.min_wait": "100ms"})
    _accept(stack, fn, f"{fn}-0")
    wait_for(_state_is(stack, f"{fn}-0", "failed"), timeout=60, interval=0.5, what="the call to fail")
    record = _record(stack, f"{fn}-0")
    assert (record["attempts"], record["statusCode"]) == (2, 500), record

    status, text, _ = call(f"{stack.url}/system/functions", "PUT", {
        "service": fn, "image": "faas-test/classic-watchdog:latest", "labels": {"com.openfaas.retry.codes": "5xx"}},
        auth(stack))
    assert status == 400 and b"com.openfaas.retry.codes" in text, text


def test_a_cron_function_runs_on_its_schedule(cli, watchdog_image, stack):
    fn = shared_name("cron-every-minute")
    result = cli.ok("deploy", "--image", watchdog_image, "--name", fn, "--env", "handler=echo tick",
                    "--annotation", "topic=cron-function", "--annotation", "schedule=* * * * *")
    assert "202 accepted" in result.out.lower(), str(result)

    def a_run():
        status, text, _ = call(f"{stack.url}/system/async-calls?function={fn}&state=succeeded", headers=auth(stack))
        calls = json.loads(text)["calls"]
        return calls[0] if calls else None

    run = wait_for(a_run, timeout=150, interval=2, what="a run of the cron function")
    assert run["callId"].startswith("cron-") and run["statusCode"] == 200, run
    assert _record(stack, run["callId"])["result"]["body"] == "tick\n"

    refused = cli.run("deploy", "--image", watchdog_image, "--name", shared_name("cron-bad"),
                      "--annotation", "topic=cron-function", "--annotation", "schedule=61 * * * *")
    assert refused.rc != 0 and "schedule" in refused.text, str(refused)
