"""GET /system/events: functions' runtime events as Server-Sent Events, one JSON object each."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, Response, request

from app.schemas import EventQuerySchema, FunctionEventSchema, load_query
from app.state import event_source, request_namespace, settings, stream_slots
from app.streaming import sse_stream

bp = Blueprint("events", __name__)
_QUERY = EventQuerySchema()
_EVENT = FunctionEventSchema()


@bp.get("/system/events")
def function_events():
    query = load_query(_QUERY, request)
    query = dataclasses.replace(query, namespace=request_namespace(query.namespace))
    slots = stream_slots()
    slots.take()
    try:
        # Opened before the response starts, so Docker being away is still a plain 503.
        stream = event_source().open(query)
    except BaseException:
        slots.give_back()
        raise
    body = sse_stream(stream, _EVENT.dump, settings().write_timeout, request.environ.get("gunicorn.socket"))
    response = Response(
        body,
        mimetype="text/event-stream",
        # nginx honours X-Accel-Buffering, so events are not held back by a proxy in front.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    # The server closes every response, also one whose body it never started to send.
    response.call_on_close(slots.give_back)
    return response
