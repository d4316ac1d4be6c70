"""Invoking functions through nginx and gunicorn, with the real-watchdog test images on Swarm."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import uuid
from urllib.parse import urlsplit

import pytest

from tests.e2e.stack import at_gunicorn, auth, container, deploy, gateway_log, invoke, routed_by_nginx
from tests.gateway import call
from tests.swarm import shared_name
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def env_fns(stack, watchdog_image, of_watchdog_image) -> dict[str, str]:
    """A function printing its environment on each watchdog, by kind."""
    fns = {"classic": shared_name("env"), "of-watchdog": shared_name("of-env")}
    deploy(stack, fns["classic"], "env", watchdog_image)
    deploy(stack, fns["of-watchdog"], "env", of_watchdog_image)
    return fns


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# The classic watchdog answers OPTIONS (and HEAD) itself with 405; of-watchdog passes them on.
CASES = [("classic", method) for method in METHODS] + [("of-watchdog", method) for method in METHODS + ["OPTIONS"]]


@pytest.mark.parametrize("kind, method", CASES)
def test_method_path_and_query_reach_the_function(stack, env_fns, kind, method):
    status, headers, body = invoke(stack, f"/function/{env_fns[kind]}/some/path?a=1&b=two", method, b"x")
    assert status == 200, body
    env = dict(line.split("=", 1) for line in body.decode().splitlines() if "=" in line)
    assert (env["Http_Method"], env["Http_Path"], env["Http_Query"]) == (method, "/some/path", "a=1&b=two")
    assert headers["X-Call-Id"] and env["Http_X_Call_Id"] == headers["X-Call-Id"]
    # The gateway's values, not of-watchdog's stand-ins for absent headers (its own address
    # with a port, the Host it was called by, no Proto).
    parts = urlsplit(stack.url)
    assert env["Http_X_Forwarded_Host"] == parts.netloc and env["Http_X_Forwarded_Proto"] == "http"
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+(, \d+\.\d+\.\d+\.\d+)*", env["Http_X_Forwarded_For"]), env


def test_head_has_no_body(stack, env_fns):
    status, headers, body = invoke(stack, f"/function/{env_fns['of-watchdog']}", "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_a_status_the_function_chose_passes_back(stack, watchdog_image):
    # The classic watchdog's own 405 to OPTIONS is the function's answer, not a proxy error.
    # (A function of its own: the metrics test counts the 200s of the env functions.)
    fn = shared_name("refuser")
    deploy(stack, fn, "echo never")
    status, headers, _ = invoke(stack, f"/function/{fn}", "OPTIONS")
    assert status == 405 and "X-OpenFaaS-Internal" not in headers


def test_unknown_function_is_a_proxy_404(stack):
    status, headers, _ = invoke(stack, "/function/no-such-function-here")
    assert status == 404 and headers["X-OpenFaaS-Internal"] == "proxy"


def _peak_rss_kib(stack, service: str) -> int:
    """The largest peak RSS (VmHWM) of the processes of one of the stack's services, in KiB."""
    status = subprocess.run(
        ["docker", "exec", container(stack, service), "sh", "-c", "cat /proc/[0-9]*/status"],
        capture_output=True, text=True, check=True,
    ).stdout
    return max(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


BIG = 100_000_000
# A memory bound far below BIG: a body held whole anywhere on the way exceeds it.
FLAT_KIB = 30 * 1024


@pytest.fixture(scope="module")
def big_fns(stack, of_watchdog_image) -> tuple[str, str]:
    """A function answering the SHA-256 of the body it is sent, and one answering BIG bytes of a
    known pattern. of-watchdog streams both ways (the classic one holds a whole body and reply in
    memory)."""
    upload, download = shared_name("sha256"), shared_name("pattern")
    deploy(stack, upload, "sha256sum", of_watchdog_image)
    deploy(stack, download, f"yes faas-swarm-py | head -c {BIG}", of_watchdog_image)
    return upload, download


def _big_upload() -> tuple[bytes, str]:
    data = os.urandom(BIG)
    return data, hashlib.sha256(data).hexdigest()


def _big_download_sha256() -> str:
    return hashlib.sha256((b"faas-swarm-py\n" * (BIG // 14 + 1))[:BIG]).hexdigest()


def test_100_mb_streams_through_with_flat_memory(stack, big_fns):
    # nginx carries the calls straight to the task; the gateway, which sent them on before, must
    # stay flat too. (Its own proxy, the way of calls nginx cannot route, is the next test's.)
    upload, download = big_fns
    before = {service: _peak_rss_kib(stack, service) for service in ("nginx", "gateway")}
    data, digest = _big_upload()
    status, _, body = invoke(stack, f"/function/{upload}", "POST", data)
    assert (status, body.split()[:1]) == (200, [digest.encode()])
    status, _, body = invoke(stack, f"/function/{download}")
    assert status == 200 and len(body) == BIG and hashlib.sha256(body).hexdigest() == _big_download_sha256()
    for service, peak in before.items():
        grown = _peak_rss_kib(stack, service) - peak
        assert grown < FLAT_KIB, f"the {service}'s peak memory grew by {grown} KiB"


def test_100_mb_streams_through_the_gateways_own_proxy_with_flat_memory(stack, big_fns):
    # The calls nginx cannot route (a function just deployed, or woken from zero) go through its
    # gateway_fallback pool to the gateway's Python proxy (app/dataplane/forwarder.py). Here they are sent to
    # the gateway's gunicorn itself, so nginx's table cannot take them away from that proxy.
    upload, download = big_fns
    gunicorn = at_gunicorn(stack)
    data, digest = _big_upload()
    upload_id, download_id = uuid.uuid4().hex, uuid.uuid4().hex
    before = _peak_rss_kib(stack, "gateway")

    status, _, body = invoke(gunicorn, f"/function/{upload}", "POST", data, {"X-Request-Id": upload_id})
    assert (status, body.split()[:1]) == (200, [digest.encode()])
    after_upload = _peak_rss_kib(stack, "gateway")
    status, _, body = invoke(gunicorn, f"/function/{download}", headers={"X-Request-Id": download_id})
    assert status == 200 and len(body) == BIG and hashlib.sha256(body).hexdigest() == _big_download_sha256()
    after_download = _peak_rss_kib(stack, "gateway")

    # The proof that the Python proxy carried both: gunicorn's access log has a line for each
    # call, by the X-Request-Id sent with it, with the function's path (only the proxy blueprint
    # serves /function/), its 200 and, for the download, the BIG bytes gunicorn sent. It writes
    # the line once the response is over, a moment after the client has the last byte.
    def logged(request_id: str) -> str | None:
        return next((line for line in gateway_log(stack).splitlines() if f" rid={request_id} " in line), None)

    line = wait_for(lambda: logged(upload_id), timeout=10, interval=0.2, what="the upload in the gateway's access log")
    assert f'"POST /function/{upload} HTTP/1.1" 200 ' in line, line
    line = wait_for(lambda: logged(download_id), timeout=10, interval=0.2, what="the download in the gateway's access log")
    assert f'"GET /function/{download} HTTP/1.1" 200 {BIG} ' in line, line

    grown = {"upload": after_upload - before, "download": after_download - after_upload}
    print(f"gateway VmHWM KiB: before {before}, after upload {after_upload}, after download {after_download}")
    for direction, kib in grown.items():
        assert kib < FLAT_KIB, f"the gateway's peak memory grew by {kib} KiB on the {direction}"


def _invocations(stack, fn: str, code: int) -> float:
    """gateway_function_invocation_total of ``fn`` with status ``code``, 0 when absent."""
    _, _, text = invoke(stack, "/metrics")
    line = f'gateway_function_invocation_total{{code="{code}",function_name="{fn}"}}'
    return sum(float(row.split()[-1]) for row in text.decode().splitlines() if row.startswith(line + " "))


def test_slow_function_is_a_proxy_504(stack, watchdog_image):
    fn = shared_name("slow")
    # The watchdog's own deadlines (65 s in the image) are far off: the stack's 5 s is met first.
    deploy(stack, fn, "sleep 8; echo late")
    status, headers, body = invoke(stack, f"/function/{fn}")
    assert status == 504, body
    assert headers["X-OpenFaaS-Internal"] == "proxy"
    # nginx routed the call and answered the 504 itself: it reports it like any other call.
    wait_for(lambda: _invocations(stack, fn, 504) == 1, timeout=10, interval=0.2, what="the 504 to be counted")


def test_scale_from_zero(stack, watchdog_image):
    fn = shared_name("zero")
    deploy(stack, fn, "cat")
    scale = {"serviceName": fn, "replicas": 0}
    assert call(f"{stack.url}/system/scale-function/{fn}", "POST", scale, auth(stack))[0] == 202

    def asleep():
        # No container left at all: a task shutting down can still answer for a moment.
        containers = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={fn}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        status = json.loads(call(f"{stack.url}/system/function/{fn}", headers=auth(stack))[1])
        return status["replicas"] == 0 and not containers

    wait_for(asleep, timeout=60, what=f"{fn} to scale to zero")
    # nginx hands the call, body unread, to the gateway, which wakes the function and streams it.
    awake = bytes(range(256)) * 4096
    status, _, body = invoke(stack, f"/function/{fn}", "POST", awake)
    assert (status, body) == (200, awake)
    assert json.loads(call(f"{stack.url}/system/function/{fn}", headers=auth(stack))[1])["replicas"] == 1


def test_nginx_calls_a_ready_function_itself_and_keeps_its_table_to_itself(stack, env_fns):
    # _deploy waited for nginx to route the function; every call since goes the same way.
    assert routed_by_nginx(stack, env_fns["classic"])
    status, _, body = invoke(stack, "/_/routes")
    assert (status, body) == (404, b"Not found.\n")


def test_a_name_nginx_routes_in_another_case_is_answered_by_the_gateway(stack, env_fns):
    """nginx matches its table's names regardless of case; the gateway does not."""
    fn = env_fns["classic"]
    assert invoke(stack, f"/function/{fn}")[0] == 200
    status, headers, body = invoke(stack, f"/function/{fn.upper()}")
    assert (status, headers["X-OpenFaaS-Internal"]) == (invoke(stack, "/function/NO-SUCH-FUNCTION")[0], "proxy")
    assert fn.upper() in body.decode()


def test_the_gateway_wants_credentials_for_nginxs_table(stack):
    # From nginx's container as from any other: functions reach the gateway on their networks.
    nginx = container(stack, "nginx")
    for credentials in ([], ["-u", f"{stack.user}:wrong"]):
        asked = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *credentials, "http://gateway:8080/_/routes/table"]
        status = subprocess.run(["docker", "exec", nginx, *asked], capture_output=True, text=True, check=True).stdout
        assert status == "401", credentials


def test_nginx_logs_each_table_it_loads_with_what_changed(stack, env_fns):
    logs = subprocess.run(["docker", "logs", container(stack, "nginx")], capture_output=True, text=True, check=True)
    lines = (logs.stdout + logs.stderr).splitlines()
    # Deploying a function added its pool to the table, and nginx's side said so when it loaded it.
    for fn in env_fns.values():
        assert any(line.startswith("routes: loaded the table: ") and f"+ fn_{fn} (1 task)" in line for line in lines), fn
    # The table came with the credentials from the start.
    assert not any("error: 401" in line for line in lines)


def test_a_new_table_closes_no_kept_alive_client_connection(stack, env_fns):
    """nginx takes a new table without a reload: a reload closes every idle kept-alive client
    connection, and a call a client sends on one at that moment is lost."""
    parts = urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request("GET", f"/function/{env_fns['classic']}/_/health")
        assert connection.getresponse().read() is not None
        kept = connection.sock
        # deploy() returns once nginx routes the new function: once it has loaded a new table.
        deploy(stack, shared_name("newcomer"), "env")
        connection.request("GET", f"/function/{env_fns['classic']}/_/health")
        response = connection.getresponse()
        response.read()
        assert response.status == 200 and connection.sock is kept
    finally:
        connection.close()


def test_nginx_refuses_a_table_it_cannot_use_and_keeps_routing_with_the_last(stack, env_fns):
    loaded = subprocess.run(
        ["docker", "exec", container(stack, "nginx"), "sh", "-c",
         "printf 'pool fn_x 10.0.0.1\\n' | curl -sS -w ' %{http_code}' --data-binary @- http://127.0.0.1:8081/routes"],
        capture_output=True, text=True, check=True,
    )
    assert loaded.stdout == "line 1: not an IPv4 address and port: 10.0.0.1\n 400"
    assert routed_by_nginx(stack, env_fns["classic"]) and routed_by_nginx(stack, env_fns["of-watchdog"])


def test_metrics_count_calls_across_workers(stack, env_fns):
    env_fn = env_fns["classic"]

    def count() -> int:
        return json.loads(call(f"{stack.url}/system/function/{env_fn}", headers=auth(stack))[1])["invocationCount"]

    # nginx sends the sums of the calls it made itself a fifth of a second later: the earlier
    # tests' calls are all in once the count stays put for longer than that.
    counts = []
    wait_for(lambda: counts.append(count()) or counts[-2:] == counts[-1:] * 2, timeout=10, interval=0.5,
             what="the earlier calls to be counted")
    before = counts[-1]
    for _ in range(12):  # the stack runs two gunicorn workers: calls land on both
        assert invoke(stack, f"/function/{env_fn}")[0] == 200

    def counted():
        now = count()
        assert now <= before + 12
        return now == before + 12

    wait_for(counted, timeout=10, interval=0.2, what="every call to be counted")
    _, _, text = invoke(stack, "/metrics")
    line = f'gateway_function_invocation_total{{code="200",function_name="{env_fn}"}}'
    (sample,) = [row for row in text.decode().splitlines() if row.startswith(line)]
    assert float(sample.split()[-1]) == before + 12
    assert "gateway_functions_seconds_bucket" in text.decode()


def test_alerts_scale_up_and_back_down(stack, watchdog_image):
    fn = shared_name("alerted")
    body = {"service": fn, "image": watchdog_image, "labels": {"com.openfaas.scale.max": "4", "com.openfaas.scale.factor": "50"}}
    assert call(f"{stack.url}/system/functions", "POST", body, auth(stack))[0] == 202

    def alert(status: str) -> int:
        webhook = {
            "status": status,
            "receiver": "scale-up",
            "alerts": [{"status": status, "labels": {"alertname": "APIHighInvocationRate", "function_name": fn}}],
        }
        return call(f"{stack.url}/system/alert", "POST", webhook, auth(stack))[0]

    def replicas() -> int:
        return json.loads(call(f"{stack.url}/system/function/{fn}", headers=auth(stack))[1])["replicas"]

    assert alert("firing") == 200 and replicas() == 3  # 1 + ceil(4 / 100 * 50)
    assert alert("firing") == 200 and replicas() == 4  # capped at the maximum
    assert alert("resolved") == 200 and replicas() == 1  # back to the minimum
