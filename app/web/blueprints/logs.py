"""GET /system/logs: a function's log lines as NDJSON, streamed and flushed line by line."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, request

from app.web.schemas import LogMessageSchema, LogQuerySchema, load_query
from app.web.state import log_source, request_namespace, settings, stream_slots
from app.web.streaming import ndjson_stream, streamed_response

bp = Blueprint("logs", __name__)
_QUERY = LogQuerySchema()
_MESSAGE = LogMessageSchema()


@bp.get("/system/logs")
def function_logs():
    query = load_query(_QUERY, request)
    query = dataclasses.replace(query, namespace=request_namespace(query.namespace))
    return streamed_response(
        stream_slots(),
        lambda: log_source().open(query),
        lambda stream: ndjson_stream(stream, _MESSAGE.dump, settings().write_timeout, request.environ.get("gunicorn.socket")),
        "application/x-ndjson",
    )
