"""The dashboard's HTTP side: signing in and out, the session's CSRF token on every change, pages
that need a session, escaping, and the headers that keep foreign and inline script out."""

from __future__ import annotations

import dataclasses
import re

import pytest

from app import create_app
from app.config import Config
from app.queue import STATES
from app.web.state import parts_of
from tests.unit.helpers import PASSWORD, USER, deployment

PAGES = [
    "/ui/", "/ui/function/echo", "/ui/deploy", "/ui/deploy?update=echo", "/ui/secrets", "/ui/events", "/ui/async",
    "/ui/async/a-call:1.x_y",
]
SAME_ORIGIN = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def browser(app):
    """A client like a browser: no basic auth, cookies kept."""
    return app.test_client()


def sign_in(browser, user=USER, password=PASSWORD, **extra):
    return browser.post("/ui/login", data={"user": user, "password": password, **extra}, headers=SAME_ORIGIN)


def token_of(page: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]*)">', page).group(1)


@pytest.mark.parametrize("page", PAGES)
def test_pages_send_a_visitor_without_a_session_to_the_sign_in_form(browser, page):
    response = browser.get(page)
    assert response.status_code == 302
    assert response.location.startswith("/ui/login?next=")


def test_the_sign_in_form_is_one_a_password_manager_fills(browser):
    page = browser.get("/ui/login").get_data(as_text=True)
    assert 'autocomplete="username"' in page and 'type="password" autocomplete="current-password"' in page
    assert re.search(r'<label for="user">User</label>', page) and re.search(r'<label for="password">Password</label>', page)


def test_wrong_credentials_are_401_and_start_no_session(browser):
    response = sign_in(browser, password="wrong")
    assert response.status_code == 401 and "Wrong user name or password." in response.get_data(as_text=True)
    assert browser.get("/ui/").status_code == 302
    assert browser.get("/system/functions").status_code == 401


def test_signing_in_opens_the_pages_and_the_api(browser, client):
    client.post("/system/functions", json=deployment())
    response = sign_in(browser, next="/ui/secrets")
    assert response.status_code == 303 and response.location == "/ui/secrets"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    for page in PAGES:
        assert browser.get(page).status_code == 200, page
    assert [fn["name"] for fn in browser.get("/system/functions").get_json()] == ["echo"]


@pytest.mark.parametrize("target", ["https://evil.example/ui/", "//evil.example/ui/", "/system/functions", "ui/"])
def test_signing_in_never_sends_the_browser_elsewhere(browser, target):
    assert sign_in(browser, next=target).location == "/ui/"


def test_a_session_change_needs_its_csrf_token(browser, engine):
    sign_in(browser)
    token = token_of(browser.get("/ui/").get_data(as_text=True))
    assert len(token) >= 32
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}):
        response = browser.post("/system/functions", json=deployment(), headers={**SAME_ORIGIN, **headers})
        assert response.status_code == 403 and "X-CSRF-Token" in response.get_data(as_text=True)
    assert engine.services == {}
    response = browser.post("/system/functions", json=deployment(), headers={**SAME_ORIGIN, "X-CSRF-Token": token})
    assert response.status_code == 202


def test_each_session_has_its_own_token(app):
    first, second = app.test_client(), app.test_client()
    sign_in(first), sign_in(second)
    token = token_of(first.get("/ui/").get_data(as_text=True))
    assert token != token_of(second.get("/ui/").get_data(as_text=True))
    response = second.post("/system/secrets", json={"name": "k", "value": "v"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 403


def test_a_session_from_other_credentials_is_not_accepted(app, browser, config, runtime, logs):
    sign_in(browser)
    cookie = browser.get_cookie("faas_ui_session").value
    changed = create_app(
        Config(**{**config.__dict__, "basic_auth_password": "another"}), dataclasses.replace(runtime, logs=logs)
    ).test_client()
    changed.set_cookie("faas_ui_session", cookie)
    assert changed.get("/system/functions").status_code == 401


def test_signing_out_needs_the_token_and_ends_the_session(browser):
    sign_in(browser)
    token = token_of(browser.get("/ui/").get_data(as_text=True))
    assert browser.post("/ui/logout", data={"csrf_token": "forged"}, headers=SAME_ORIGIN).status_code == 403
    assert browser.get("/system/functions").status_code == 200
    response = browser.post("/ui/logout", data={"csrf_token": token}, headers=SAME_ORIGIN)
    assert response.status_code == 303 and response.location == "/ui/login"
    assert browser.get("/system/functions").status_code == 401
    assert browser.get("/ui/").status_code == 302


def test_a_cookie_copied_before_signing_out_is_refused_afterwards(browser, config, runtime, logs):
    sign_in(browser)
    copied = browser.get_cookie("faas_ui_session").value
    token = token_of(browser.get("/ui/").get_data(as_text=True))
    assert browser.post("/ui/logout", data={"csrf_token": token}, headers=SAME_ORIGIN).status_code == 303
    # Another process of the same gateway: only what the sign-out recorded tells it.
    thief = create_app(config, dataclasses.replace(runtime, logs=logs)).test_client()
    thief.set_cookie("faas_ui_session", copied)
    assert thief.get("/system/functions").status_code == 401
    assert thief.get("/ui/").status_code == 302
    # A new sign-in is a new session, untouched by the old one's end.
    sign_in(browser)
    assert browser.get("/system/functions").status_code == 200


def test_only_signing_in_sets_the_cookie(browser):
    """A request in flight while the user signs out must not send the old cookie back."""
    sign_in(browser)
    for page in ["/ui/", "/system/functions", "/ui/static/common.js"]:
        assert "Set-Cookie" not in browser.get(page).headers, page


@pytest.mark.parametrize("path", ["/ui/login", "/ui/logout"])
def test_the_forms_refuse_other_sites(browser, path):
    response = browser.post(path, data={"user": USER, "password": PASSWORD}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert browser.get_cookie("faas_ui_session") is None


def test_pages_forbid_inline_and_foreign_script(browser):
    sign_in(browser)
    for page in PAGES + ["/ui/login", "/ui/static/common.js"]:
        response = browser.get(page)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        if response.mimetype == "text/html":
            html = response.get_data(as_text=True)
            # Every script is a file of the gateway's own: no inline code, no other host.
            assert re.findall(r"<script[^>]*>", html) and all(
                re.fullmatch(r'<script src="/ui/static/[a-z]+\.js">', tag) for tag in re.findall(r"<script[^>]*>", html)
            )
            # Every asset and link is the gateway's own.
            assert all(url.startswith(("/", "#", "data:")) for url in re.findall(r'(?:src|href|action)="([^"]*)"', html))


def test_templates_escape_what_they_show(browser):
    sign_in(browser, user=USER)
    page = browser.get("/ui/login?next=/ui/%22%3E%3Cscript%3Ealert(1)%3C/script%3E").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&#34;&gt;&lt;script&gt;alert(1)" in page


@pytest.mark.parametrize("page, field", [
    ("/ui/function/%3Cb%3E", "name"), ("/ui/deploy?update=%3Cb%3E", "name"), ("/ui/async/%3Cb%3E", "call id"),
])
def test_a_page_for_an_impossible_name_is_a_400_naming_it(browser, page, field):
    sign_in(browser)
    response = browser.get(page)
    assert response.status_code == 400 and response.mimetype == "text/plain"
    assert "<b>" in response.get_data(as_text=True) and field in response.get_data(as_text=True).lower()


def test_every_asset_the_pages_name_is_served(browser):
    sign_in(browser)
    for page in PAGES:
        html = browser.get(page).get_data(as_text=True)
        for asset in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', html):
            assert browser.get(asset).status_code == 200, asset


def test_without_basic_auth_the_pages_open_without_signing_in(tmp_path, runtime, logs):
    app = create_app(Config(basic_auth=False, state_dir=str(tmp_path)), dataclasses.replace(runtime, logs=logs))
    browser = app.test_client()
    assert browser.get("/ui/").status_code == 200
    assert browser.get("/ui/login").location == "/ui/"
    assert "Sign out" not in browser.get("/ui/").get_data(as_text=True)


def test_every_page_leads_to_the_async_calls(browser):
    sign_in(browser)
    for page in PAGES:
        assert re.search(r'<a href="/ui/async" [^>]*>Async</a>', browser.get(page).get_data(as_text=True)), page
    assert '<a href="/ui/async" aria-current="page">Async</a>' in browser.get("/ui/async").get_data(as_text=True)


def test_the_async_calls_can_be_filtered_by_every_state(browser):
    sign_in(browser)
    page = browser.get("/ui/async").get_data(as_text=True)
    select = re.search(r'<select id="state">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r"<option[^>]*>([^<]*)</option>", select) == ["all", *STATES]
    assert '<option value="">all</option>' in select


def test_a_call_s_page_names_the_call_for_its_script(browser):
    sign_in(browser)
    page = browser.get("/ui/async/a-call:1.x_y").get_data(as_text=True)
    assert 'data-call-id="a-call:1.x_y"' in page and "<title>Call a-call:1.x_y · " in page


@pytest.mark.parametrize("page, buttons", [
    ("/ui/async", ["replay-dead", "newest", "older"]), ("/ui/async/a-call", ["cancel", "replay"]),
])
def test_the_async_pages_buttons_wait_for_their_script(browser, page, buttons):
    """Usable only once the script knows what they may do (a call's state, a next page)."""
    sign_in(browser)
    html = browser.get(page).get_data(as_text=True)
    for button in buttons:
        assert re.search(rf'<button type="button" id="{button}"[^>]* disabled>', html), button


def test_the_session_steers_async_calls_with_its_token(app, browser, client):
    """What the Async pages' buttons send: cancel, replay one, replay the dead letters."""
    client.post("/system/functions", json=deployment())
    ids = [client.post("/async-function/echo", data=b"x").headers["X-Call-Id"] for _ in range(2)]
    queue = parts_of(app).queue
    [delivery] = queue.take("test", 1, 0)
    queue.dead_letter(delivery, "gave up")
    sign_in(browser)
    token = {**SAME_ORIGIN, "X-CSRF-Token": token_of(browser.get("/ui/async").get_data(as_text=True))}
    changes = [
        ("DELETE", f"/async-function/{ids[1]}"),
        ("POST", f"/system/async-calls/{ids[1]}/retry"),
        ("POST", "/system/async-calls/retry?state=dead&function=echo&namespace=openfaas-fn"),
    ]
    for method, path in changes:
        assert browser.open(path, method=method, headers=SAME_ORIGIN).status_code == 403, path
    assert [call["state"] for call in browser.get("/system/async-calls").get_json()["calls"]] == ["queued", "dead"]

    response = browser.open(changes[0][1], method="DELETE", headers=token)
    assert response.status_code == 202 and response.get_json()["state"] == "cancelled"
    response = browser.post(changes[1][1], headers=token)
    assert response.status_code == 202 and response.get_json()["state"] == "queued"
    assert [run["state"] for run in response.get_json()["history"]] == ["cancelled"]
    response = browser.post(changes[2][1], headers=token)
    assert response.status_code == 202 and response.get_json() == {"queued": [ids[0]]}
