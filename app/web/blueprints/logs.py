"""GET /system/logs: a function's log lines as NDJSON, streamed and flushed line by line."""

from __future__ import annotations

from flask import Blueprint

from app.web.schemas import LogMessageSchema, LogQuerySchema
from app.web.state import log_source, request_namespace, settings, stream_slots
from app.web.streaming import FunctionStream, ndjson_stream

bp = Blueprint("logs", __name__)
_LOGS = FunctionStream(LogQuerySchema(), "application/x-ndjson", ndjson_stream, LogMessageSchema().dump)


@bp.get("/system/logs")
def function_logs():
    return _LOGS.respond(log_source().open, request_namespace, stream_slots(), settings().write_timeout)
