"""The one place that turns errors into HTTP responses.

A ``GatewayError`` becomes a ``text/plain`` body holding its sentence, with its status and
headers; Werkzeug's own errors keep their status without the HTML page. Anything else that
escapes a view is logged with its traceback and answered with a short 500 sentence, so no client
ever sees a Python traceback.
"""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from app.errors import GatewayError

log = logging.getLogger(__name__)


def text_response(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """A ``text/plain`` response holding one sentence, newline-terminated."""
    response = Response(message.rstrip("\n") + "\n", status=status, mimetype="text/plain")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that render every error as a plain-text sentence."""

    @app.errorhandler(GatewayError)
    def _gateway_error(error: GatewayError) -> Response:
        return text_response(error.message, error.status, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        # Werkzeug's own errors (unknown path, wrong method, oversized body) keep their status
        # and headers such as Allow, but lose the HTML page.
        response = text_response(error.description or error.name, error.code or 500)
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return text_response("The gateway failed unexpectedly; the error has been logged.", 500)
