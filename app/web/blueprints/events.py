"""GET /system/events: functions' runtime events as Server-Sent Events, one JSON object each."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, request

from app.web.schemas import EventQuerySchema, FunctionEventSchema, load_query
from app.web.state import event_source, request_namespace, settings, stream_slots
from app.web.streaming import sse_stream, streamed_response

bp = Blueprint("events", __name__)
_QUERY = EventQuerySchema()
_EVENT = FunctionEventSchema()


@bp.get("/system/events")
def function_events():
    query = load_query(_QUERY, request)
    query = dataclasses.replace(query, namespace=request_namespace(query.namespace))
    return streamed_response(
        stream_slots(),
        lambda: event_source().open(query),
        lambda stream: sse_stream(stream, _EVENT.dump, settings().write_timeout, request.environ.get("gunicorn.socket")),
        "text/event-stream",
    )
