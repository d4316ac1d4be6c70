"""The async calls' routes (app.web.blueprints.async_calls): a call's record, lists, cancel and
replay, over the SQLite queue of the ``setup`` app (its ``echo`` answers 503 twice per call)."""

from __future__ import annotations

import base64

import pytest
from prometheus_client import REGISTRY

from app.queue import DEAD, CallRecord, CallResult, Outcome, SUCCEEDED
from app.web.auth import is_protected
from app.web.schemas import CallRecordSchema


def _accept(client, n: int = 0, function: str = "echo", **headers) -> str:
    response = client.post(f"/async-function/{function}", data=f"call {n}".encode(), headers=headers)
    assert response.status_code == 202
    return response.headers["X-Call-Id"]


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_a_call_s_record_in_json(setup):
    client, _, queue, callback = setup
    call_id = _accept(client, **{"X-Callback-Url": callback})
    body = client.get(f"/system/async-calls/{call_id}").get_json()
    assert body == {
        "callId": call_id, "function": "echo", "namespace": "openfaas-fn", "state": "queued", "attempts": 0,
        "acceptedAt": body["acceptedAt"], "startedAt": None, "finishedAt": None, "statusCode": None,
        "durationSeconds": None, "error": None, "callbackDelivered": None, "result": None, "history": [],
    }
    assert body["acceptedAt"].endswith("Z") and "T" in body["acceptedAt"]

    [delivery] = queue.take("test", 1, 0)
    result = CallResult(200, [("Content-Type", "text/plain"), ("X-Dup", "1"), ("X-Dup", "2")], b"done", False)
    queue.finish(delivery, Outcome(SUCCEEDED, 200, 0.5, None, result, True))
    body = client.get(f"/system/async-calls/{call_id}").get_json()
    assert (body["state"], body["attempts"], body["statusCode"], body["durationSeconds"]) == ("succeeded", 1, 200, 0.5)
    assert body["callbackDelivered"] is True and body["finishedAt"] >= body["startedAt"] >= body["acceptedAt"]
    assert body["result"] == {"statusCode": 200, "headers": {"Content-Type": "text/plain", "X-Dup": "1, 2"},
                              "body": "done", "truncated": False}


def test_a_result_that_is_not_utf8_is_base64():
    record = CallRecord("c", "f", "ns", SUCCEEDED, 1, 0.0, result=CallResult(200, [], b"\xff\x00", True))
    result = CallRecordSchema().dump(record)["result"]
    assert result["bodyBase64"] == base64.b64encode(b"\xff\x00").decode() and "body" not in result
    assert result["truncated"] is True


def test_an_unknown_call_is_404_and_a_malformed_id_400(setup):
    client, _, _, _ = setup
    response = client.get("/system/async-calls/never-seen")
    assert response.status_code == 404 and "never-seen" in response.get_data(as_text=True)
    response = client.get("/system/async-calls/bad%20id")
    assert response.status_code == 400 and "Invalid call ID" in response.get_data(as_text=True)


def test_lists_newest_first_by_page_and_filter(setup):
    client, _, queue, _ = setup
    ids = [_accept(client, n) for n in range(5)]
    [delivery] = queue.take("test", 1, 0)
    queue.dead_letter(delivery, "gave up")

    assert len(client.get("/system/async-calls?limit=0").get_json()["calls"]) == 5, "Go's zero: the default page"
    page = client.get("/system/async-calls?limit=2").get_json()
    assert [call["callId"] for call in page["calls"]] == ids[:2:-1][:2] and page["next"]
    assert "result" not in page["calls"][0]
    seen = [call["callId"] for call in page["calls"]]
    while page["next"]:
        page = client.get(f"/system/async-calls?limit=2&after={page['next']}").get_json()
        seen += [call["callId"] for call in page["calls"]]
    assert seen == ids[::-1]

    dead = client.get("/system/async-calls?state=dead&function=echo&namespace=openfaas-fn").get_json()
    assert [call["callId"] for call in dead["calls"]] == [ids[0]] and dead["next"] == ""
    assert client.get("/system/async-calls?function=other").get_json() == {"calls": [], "next": ""}


@pytest.mark.parametrize("query, field", [
    ("state=lost", "state"), ("limit=-1", "limit"), ("limit=1001", "limit"), ("limit=x", "limit"),
    ("after=nope", "after"), ("function=Bad_Name", "function"), ("namespace=-x", "namespace"),
])
def test_a_bad_list_query_is_400_naming_it(setup, query, field):
    client, _, _, _ = setup
    response = client.get(f"/system/async-calls?{query}")
    assert response.status_code == 400 and field in response.get_data(as_text=True)


def test_cancel_is_202_once_then_409(setup):
    client, _, queue, _ = setup
    call_id = _accept(client)
    before = _counter("gateway_async_cancellations_total")
    response = client.delete(f"/async-function/{call_id}")
    assert response.status_code == 202 and response.get_json()["state"] == "cancelled"
    assert _counter("gateway_async_cancellations_total") == before + 1
    again = client.delete(f"/async-function/{call_id}")
    assert again.status_code == 409 and "it is cancelled" in again.get_data(as_text=True)
    assert queue.take("test", 10, 0) == []


def test_a_running_call_cannot_be_cancelled(setup):
    client, _, queue, _ = setup
    call_id = _accept(client)
    queue.take("test", 1, 0)
    response = client.delete(f"/async-function/{call_id}")
    assert response.status_code == 409 and "it is running" in response.get_data(as_text=True)
    assert client.delete("/async-function/never-seen").status_code == 404


def test_cancel_needs_the_system_credentials_and_a_call_does_not():
    assert is_protected("/async-function/some-call", "DELETE")
    assert not is_protected("/async-function/echo", "POST")


def test_replay_puts_a_dead_call_back_and_refuses_a_queued_one(setup):
    client, _, queue, _ = setup
    call_id = _accept(client)
    refused = client.post(f"/system/async-calls/{call_id}/retry")
    assert refused.status_code == 409 and "it is queued" in refused.get_data(as_text=True)
    [delivery] = queue.take("test", 1, 0)
    queue.dead_letter(delivery, "gave up")

    before = _counter("gateway_async_replays_total")
    response = client.post(f"/system/async-calls/{call_id}/retry")
    body = response.get_json()
    assert response.status_code == 202 and (body["state"], body["attempts"]) == ("queued", 0)
    assert [(run["state"], run["error"]) for run in body["history"]] == [("dead", "gave up")]
    assert _counter("gateway_async_replays_total") == before + 1
    assert [d.call.call_id for d in queue.take("test", 1, 0)] == [call_id]
    assert client.post("/system/async-calls/never-seen/retry").status_code == 404


def test_a_batch_replay_queues_the_dead_calls_of_a_function(setup):
    client, _, queue, _ = setup
    ids = [_accept(client, n) for n in range(3)]
    for delivery in queue.take("test", 2, 0):
        queue.dead_letter(delivery, "gave up")
    response = client.post("/system/async-calls/retry?function=echo&state=dead")
    assert response.status_code == 202 and sorted(response.get_json()["queued"]) == sorted(ids[:2])
    assert queue.counts()[DEAD] == 0
    assert client.post("/system/async-calls/retry?function=echo").get_json() == {"queued": []}
    response = client.post("/system/async-calls/retry?state=running")
    assert response.status_code == 400 and "state" in response.get_data(as_text=True)


def test_the_state_gauges_follow_the_records(setup):
    client, worker, queue, _ = setup
    _accept(client)
    worker._take()  # one round: counts right after taking
    assert REGISTRY.get_sample_value("gateway_async_calls", {"state": "running"}) == 1
    assert REGISTRY.get_sample_value("gateway_async_queue_depth") == 1
