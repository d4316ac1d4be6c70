"""GET /system/events: functions' runtime events as Server-Sent Events, one JSON object each."""

from __future__ import annotations

from flask import Blueprint

from app.web.schemas import EventQuerySchema, FunctionEventSchema
from app.web.state import event_source, request_namespace, settings, stream_slots
from app.web.streaming import FunctionStream, sse_stream

bp = Blueprint("events", __name__)
_EVENTS = FunctionStream(EventQuerySchema(), "text/event-stream", sse_stream, FunctionEventSchema().dump)


@bp.get("/system/events")
def function_events():
    return _EVENTS.respond(event_source().open, request_namespace, stream_slots(), settings().write_timeout)
