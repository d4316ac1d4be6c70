"""The dashboard at /ui/: HTML pages whose scripts call the gateway's own API.

The pages are shells: every function, secret, log line, event and async call is fetched by the
page's script from the ``/system`` API and put on the page as text (``textContent``), never as
HTML, so nothing a function, its logs or its answers say can run as script; the templates
autoescape what they show, and every response forbids inline and foreign scripts
(Content-Security-Policy), so an injection that got through anyway would not run. Every asset is
served from here: no CDN, no build step.

With basic auth on, the pages need a signed-in session (``app.web.auth``): a sign-in form a password
manager can fill, and sign-out. The pages carry the session's CSRF token, which their script sends
with every change. With basic auth off, the pages open without signing in.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request, url_for

from app.domain.names import require_function_name
from app.queue import STATES
from app.web.auth import check_csrf, csrf_token, sign_in, sign_out, signed_in_user
from app.web.schemas import check_call_id
from app.web.state import credentials, settings

bp = Blueprint(
    "ui",
    __name__,
    url_prefix="/ui",
    template_folder="../../templates",
    static_folder="../../static/ui",
    static_url_path="/static",
)
_OPEN = frozenset({"ui.login", "ui.static"})
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@bp.before_request
def _require_sign_in():
    if credentials() is not None and signed_in_user() is None and request.endpoint not in _OPEN:
        return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def _harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "ui.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def _page_context() -> dict:
    return {
        "csrf_token": csrf_token(),
        "user": signed_in_user(),
        "auth_on": credentials() is not None,
        "default_namespace": settings().namespace,
    }


def _next_page(target: str | None) -> str:
    """Where to go after signing in: a dashboard page of this gateway, never another site."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/"):
        return url_for("ui.functions")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """GET the form; POST ``user`` and ``password``: 303 to ``next`` when right, the form again
    with 401 when wrong."""
    if credentials() is None:
        return redirect(url_for("ui.functions"))
    if request.method == "GET":
        return render_template("ui/login.html", next=_next_page(request.args.get("next")), error=None)
    if sign_in(credentials(), request.form.get("user", ""), request.form.get("password", "")):
        return redirect(_next_page(request.form.get("next")), 303)
    page = render_template("ui/login.html", next=_next_page(request.form.get("next")), error="Wrong user name or password.")
    return page, 401


@bp.post("/logout")
def logout():
    """End the session (the form carries the CSRF token; 403 without it), then the sign-in form."""
    check_csrf(request.form.get("csrf_token", ""))
    sign_out()
    return redirect(url_for("ui.login"), 303)


@bp.get("/")
def functions():
    return render_template("ui/functions.html")


@bp.get("/function/<name>")
def function(name: str):
    return render_template("ui/function.html", name=require_function_name(name))


@bp.get("/deploy")
def deploy():
    """The deploy form; ``?update=NAME`` fills it with that function to update it."""
    update = request.args.get("update") or None
    if update is not None:
        require_function_name(update)
    return render_template("ui/deploy.html", update=update)


@bp.get("/secrets")
def secrets():
    return render_template("ui/secrets.html")


@bp.get("/events")
def events():
    return render_template("ui/events.html")


@bp.get("/async")
def calls():
    return render_template("ui/calls.html", states=STATES)


@bp.get("/async/<call_id>")
def call(call_id: str):
    """One async call's page; a call ID the gateway could never have given is a 400 naming it."""
    return render_template("ui/call.html", call_id=check_call_id(call_id))
