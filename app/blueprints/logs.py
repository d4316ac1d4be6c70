"""GET /system/logs: a function's log lines as NDJSON, streamed and flushed line by line."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, Response, request

from app.schemas import LogMessageSchema, LogQuerySchema, load_query
from app.state import log_source, request_namespace, settings, stream_slots
from app.streaming import ndjson_stream

bp = Blueprint("logs", __name__)
_QUERY = LogQuerySchema()
_MESSAGE = LogMessageSchema()


@bp.get("/system/logs")
def function_logs():
    query = load_query(_QUERY, request)
    query = dataclasses.replace(query, namespace=request_namespace(query.namespace))
    slots = stream_slots()
    slots.take()
    try:
        # Opened before the response starts, so an unknown function is still a plain 404.
        stream = log_source().open(query)
    except BaseException:
        slots.give_back()
        raise
    body = ndjson_stream(stream, _MESSAGE.dump, settings().write_timeout, request.environ.get("gunicorn.socket"))
    response = Response(
        body,
        mimetype="application/x-ndjson",
        # nginx honours X-Accel-Buffering, so lines are not held back by a proxy in front.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    # The server closes every response, also one whose body it never started to send.
    response.call_on_close(slots.give_back)
    return response
