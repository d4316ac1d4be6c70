"""POST /async-function/{name}[.{namespace}][/{path}]: store the call durably, answer 202.

The 202 (with ``X-Call-Id``) is sent only after the queue has stored the whole request; a queue
that cannot store it is a 503, so an accepted call is never lost. ``X-Callback-Url`` must be an
absolute http or https URL (else 400); sent empty, it means no callback. A client's own
``X-Call-Id`` names the call's record, so it must be a valid call ID (else 400) not taken by a
call whose record is kept (else 409). The call is stored with the function's retry policy and
``max_inflight`` as its labels say (read at most once a second, ``app.runtime.label_cache``).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, Response, request

from app.domain.names import split_reference
from app.domain.retries import call_policy, gateway_policy
from app.errors import Conflict, FunctionNotFound, InvalidRequest, NotFound, PayloadTooLarge
from app.queue import AsyncCall
from app.queue.worker import redacted
from app.web.invocation import incoming_call
from app.web.schemas import check_call_id
from app.web.state import function_labels, queue, settings

bp = Blueprint("async_invoke", __name__)


def _callback_url() -> str | None:
    url = request.headers.get("X-Callback-Url")
    if not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port outside 0-65535
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"Invalid X-Callback-Url: {redacted(url)!r} is not an absolute http or https URL.")
    return url


def _body() -> bytes:
    limit = settings().max_async_body_bytes
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"An async call's body may hold at most {limit} bytes.")
    return data


@bp.route("/async-function/<target>", methods=["POST"], strict_slashes=False)
@bp.route("/async-function/<target>/<path:rest>", methods=["POST"])
def invoke_async(target: str, rest: str = ""):
    call = incoming_call(target, "/async-function/", drop=frozenset({"x-callback-url"}))
    function = call.function
    callback = _callback_url()
    name, namespace = split_reference(function)
    try:
        labels = function_labels().labels(name, namespace)
    except NotFound:
        raise FunctionNotFound(f"Function {target} not found.") from None
    try:
        retry, max_inflight = call_policy(labels, gateway_policy(settings().async_max_attempts))
    except ValueError as exc:
        raise InvalidRequest(f"Function {target} cannot take async calls: {exc}.") from None
    stored = queue().put(
        AsyncCall(
            call_id=check_call_id(call.call_id, "X-Call-Id"),
            function=function,
            namespace=namespace or settings().namespace,
            method="POST",
            path=call.path,
            query=call.query,
            headers=call.headers,
            body=_body(),
            callback_url=callback,
            enqueued_at=time.time(),
            retry=retry,
            max_inflight=max_inflight,
        )
    )
    if not stored:
        raise Conflict(f"Async call {call.call_id} exists already: send another X-Call-Id, or none.")
    return Response(status=202, headers={"X-Call-Id": call.call_id, "X-Start-Time": call.start_time})
