"""What became of async calls, and steering them: status, lists, cancel and replay.

``GET /system/async-calls/{callId}`` is one call's record, ``GET /system/async-calls`` lists them
newest first a page at a time (``next`` is the cursor for ``after``). ``DELETE
/async-function/{callId}`` cancels a call that has not started (OpenFaaS Pro's route: 202; a call
running or finished is a 409 saying which). ``POST /system/async-calls/{callId}/retry`` puts one
finished call back, ``POST /system/async-calls/retry`` a batch of them (dead ones unless
``state`` says otherwise). All need the ``/system`` credentials (``app.web.auth``).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from app import metrics
from app.errors import Conflict, InvalidRequest, NotFound
from app.queue import DEAD, CallFilter, CallRecord
from app.web.schemas import AsyncCallsQuerySchema, CallRecordSchema, ReplayQuerySchema, check_call_id, load_query
from app.web.state import queue

bp = Blueprint("async_calls", __name__)
_RECORD = CallRecordSchema()
_LISTED = CallRecordSchema(exclude=("result",))
_QUERY = AsyncCallsQuerySchema()
_REPLAY = ReplayQuerySchema()
_PAGE = 100


def _known(record: CallRecord | None, call_id: str) -> CallRecord:
    if record is None:
        raise NotFound(f"No async call {call_id} is known: it was never accepted, or its record has expired.")
    return record


@bp.get("/system/async-calls/<call_id>")
def get_call(call_id: str):
    return jsonify(_RECORD.dump(_known(queue().get(check_call_id(call_id)), call_id)))


@bp.get("/system/async-calls")
def list_calls():
    query = load_query(_QUERY, request)
    where = CallFilter(query.get("function", ""), query.get("namespace", ""), query.get("state", ""))
    try:
        records, cursor = queue().calls(where, query.get("limit") or _PAGE, query.get("after", ""))
    except ValueError:
        raise InvalidRequest(f"Invalid after: {query['after'][:100]!r} is not a cursor this gateway gave.") from None
    return jsonify({"calls": _LISTED.dump(records, many=True), "next": cursor})


# The call's ID where a call names its function: OpenFaaS Pro's route, one path in the document.
@bp.delete("/async-function/<target>")
def cancel_call(target: str):
    call_id = target
    record, cancelled = queue().cancel(check_call_id(call_id))
    record = _known(record, call_id)
    if not cancelled:
        raise Conflict(f"Async call {call_id} cannot be cancelled: it is {record.state}.")
    metrics.record_async_cancelled()
    return jsonify(_RECORD.dump(record)), 202


@bp.post("/system/async-calls/<call_id>/retry")
def replay_call(call_id: str):
    record, replayed = queue().replay(check_call_id(call_id))
    record = _known(record, call_id)
    if not replayed:
        raise Conflict(f"Async call {call_id} cannot be replayed: it is {record.state}.")
    metrics.record_async_replays(1)
    return jsonify(_RECORD.dump(record)), 202


@bp.post("/system/async-calls/retry")
def replay_calls():
    query = load_query(_REPLAY, request)
    where = CallFilter(query.get("function", ""), query.get("namespace", ""), query.get("state", DEAD))
    # One page per request: replayed calls leave the state they were listed by, so asking again
    # replays the next ones.
    records, _ = queue().calls(where, query.get("limit") or _PAGE)
    queued = [record.call_id for record in records if queue().replay(record.call_id)[1]]
    metrics.record_async_replays(len(queued))
    return jsonify({"queued": queued}), 202
