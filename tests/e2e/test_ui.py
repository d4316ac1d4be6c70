"""The dashboard in a real browser (Playwright driving Debian's chromium) against the stack
through nginx: sign in, see and open a function, invoke it, read its logs, deploy from the form,
scale, delete, the secrets' lifecycle, and cancel and replay an async call. Every page must log
no console error and no request may leave the gateway. The views are photographed on the way: into
docs/ui/ when UI_SCREENSHOTS=1 (how the README's pictures are renewed), otherwise into a temporary
folder, so a test run leaves the working tree as it was.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from harness import ROOT
from tests.e2e.stack import auth, deploy, invoke
from tests.gateway import call
from tests.swarm import CLASSIC_IMAGE, name
from tests.waiting import wait_for

SHOTS = {"folder": ROOT / "docs" / "ui"}
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
PATIENCE = 90_000  # ms: a replica starting on Swarm


class Watched:
    """A page whose console errors and requests to other hosts are collected, and checked at the end."""

    def __init__(self, page: Page, origin: str):
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []
        # Status errors the test provokes on purpose (e.g. a deploy refused with 400), by URL.
        self.expected_statuses: set[str] = set()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.route("**/*", lambda route: self._route(route, origin))

    def _console(self, message) -> None:
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource") and message.location.get("url") in self.expected_statuses:
            return
        self.errors.append(f"{message.text} ({message.location.get('url')})")

    def _route(self, route, origin: str) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" == origin:
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()


@pytest.fixture(scope="module", autouse=True)
def _shots_folder(tmp_path_factory):
    if os.environ.get("UI_SCREENSHOTS") != "1":
        SHOTS["folder"] = tmp_path_factory.mktemp("ui-shots")


@pytest.fixture
def watched(chromium, stack):
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(stack.url))
    context = chromium.new_context(viewport=DESKTOP, base_url=stack.url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    watched = Watched(page, origin)
    yield watched
    context.close()
    assert watched.foreign == [], "requests left the gateway"
    assert watched.errors == [], "console errors"


def sign_in(page: Page, stack) -> None:
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("User").fill(stack.user)
    page.get_by_label("Password").fill(stack.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Functions")).to_be_visible()


def shoot(page: Page, file: str, full_page: bool = False) -> None:
    page.screenshot(path=str(SHOTS["folder"] / file), full_page=full_page)


def test_sign_in_from_the_keyboard_and_sign_out(watched, stack):
    page = watched.page
    page.goto("/ui/secrets")
    expect(page.get_by_label("User")).to_be_focused()
    shoot(page, "sign-in.png")
    page.keyboard.type(stack.user)
    page.keyboard.press("Tab")
    page.keyboard.type(stack.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/secrets$"))
    # A copy of the session's cookie, taken while signed in, is refused once the user signed out.
    [cookie] = [c for c in page.context.cookies() if c["name"] == "faas_ui_session"]
    copied = {"Cookie": f"faas_ui_session={cookie['value']}"}
    assert call(f"{stack.url}/system/functions", headers=copied)[0] == 200
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    assert call(f"{stack.url}/system/functions", headers=copied)[0] == 401


def test_see_open_invoke_and_read_the_logs_of_a_function(watched, stack, watchdog_image):
    page = watched.page
    fn = name("ui-echo")
    # The watchdog answers with the handler's stdout; its own output (PID 1's) is the log.
    deploy(stack, fn, 'printf "hello:"; cat; echo "handled $Http_Query" > /proc/1/fd/1')
    sign_in(page, stack)
    row = page.locator("#functions tbody tr", has=page.get_by_role("link", name=fn))
    expect(row).to_contain_text("1 of 1")
    expect(row).to_contain_text("ready")
    page.get_by_label("Search").fill("no-such-function")
    expect(row).to_be_hidden()
    page.get_by_label("Search").fill(fn)
    expect(row).to_be_visible()
    # deploy() made calls of its own to see nginx route the function.
    before = json.loads(call(f"{stack.url}/system/function/{fn}", headers=auth(stack))[1])["invocationCount"]
    for _ in range(3):
        assert call(f"{stack.url}/function/{fn}", "POST", {"warm": 1})[0] == 200
    expect(row.locator("td").nth(2)).to_have_text(str(before + 3), timeout=PATIENCE)  # invocations
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^\d+\.\d\d$"))  # calls per second
    page.get_by_label("Search").fill("")
    shoot(page, "functions.png")

    page.get_by_role("link", name=fn).click()
    expect(page.get_by_role("heading", name=fn, exact=True)).to_be_visible()
    expect(page.locator("#details")).to_contain_text(CLASSIC_IMAGE)
    expect(page.locator("#details")).to_contain_text("faas_function")
    replica = page.locator("#instances tbody tr")
    expect(replica).to_have_count(1)
    expect(replica).to_contain_text("running")
    expect(replica.locator("td").nth(3)).to_have_text("ready", timeout=PATIENCE)  # its probes passed

    page.get_by_label("Query").fill("who=ui")
    page.get_by_label("Body", exact=True).fill("ping")
    page.get_by_role("button", name="Invoke").click()
    expect(page.locator("#result-status")).to_have_text("200 OK")
    expect(page.locator("#result-body")).to_have_text("hello:ping")
    expect(page.locator("#result-headers")).to_contain_text("x-call-id")

    page.get_by_label("Asynchronous").check()
    page.get_by_role("button", name="Invoke").click()
    expect(page.locator("#result-status")).to_have_text(re.compile(r"^202"))
    expect(page.locator("#result-call")).to_have_text(re.compile(r"Call id \S+"))
    page.get_by_label("Asynchronous").uncheck()

    page.get_by_role("radio", name="JSON").check()
    page.get_by_label("Body", exact=True).fill('{"a": [1, 2]}')
    page.get_by_role("button", name="Invoke").click()
    expect(page.locator("#result-body")).to_have_text('hello:{"a": [1, 2]}')

    # A body that is not text comes back as a download.
    page.get_by_role("radio", name="File").check()
    blob = {"name": "blob.bin", "mimeType": "application/octet-stream", "buffer": b"\xff\xfe\x00\x01"}
    page.locator("#body-file").set_input_files(blob)
    page.get_by_role("button", name="Invoke").click()
    expect(page.locator("#result-body")).to_have_text("10 bytes of binary data")
    expect(page.get_by_role("link", name="Download the body")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the body").click()
    assert Path(download.value.path()).read_bytes() == b"hello:\xff\xfe\x00\x01"
    page.get_by_role("radio", name="JSON").check()  # the JSON typed before is still there
    page.get_by_role("button", name="Invoke").click()
    expect(page.locator("#result-body")).to_have_text('hello:{"a": [1, 2]}')

    page.get_by_label("Follow").uncheck()
    page.get_by_role("button", name="Logs").click()
    expect(page.locator("#logs")).to_contain_text("handled who=ui", timeout=PATIENCE)
    # The charts fill from the gateway's samples (every 3 s in this stack).
    expect(page.locator("#charts")).to_contain_text(re.compile(r"desired: 1"), timeout=30_000)
    shoot(page, "function.png", full_page=True)


def test_deploy_from_the_form_then_scale_and_delete(watched, stack, watchdog_image):
    page = watched.page
    fn = name("ui-form")
    sign_in(page, stack)
    page.get_by_role("link", name="Deploy", exact=True).click()
    page.get_by_label("Image").fill(CLASSIC_IMAGE)
    page.get_by_label("Name", exact=True).fill(fn)
    page.get_by_label("Memory limit").fill("lots")
    watched.expected_statuses.add(f"{stack.url}/system/functions")
    page.get_by_role("button", name="Deploy").click()
    # The API's 400 sentence, at the field it names, which gets the focus.
    field_error = page.locator('[data-field="limits.memory"] p.error')
    expect(field_error).to_contain_text("limits.memory")
    expect(page.get_by_label("Memory limit")).to_be_focused()
    shoot(page, "deploy.png", full_page=True)

    page.get_by_label("Memory limit").fill("64Mi")
    page.get_by_label("Process").fill("/usr/bin/run-handler")
    page.get_by_label("Environment").fill("handler=echo deployed-by-form")
    page.get_by_label("Labels").fill("team=<b>ui</b>")
    page.get_by_role("button", name="Deploy").click()
    expect(page.get_by_role("heading", name=fn, exact=True)).to_be_visible()
    expect(page.locator("#details")).to_contain_text("team = <b>ui</b>")  # shown as text, not markup
    expect(page.locator("#state")).to_have_text("ready", timeout=PATIENCE)
    status = json.loads(call(f"{stack.url}/system/function/{fn}", headers=auth(stack))[1])
    assert status["limits"] == {"memory": "64Mi"} and status["envVars"] == {"handler": "echo deployed-by-form"}

    page.get_by_role("spinbutton", name="Replicas").fill("2")
    page.get_by_role("button", name="Scale").click()
    expect(page.locator("#details")).to_contain_text("2 available of 2", timeout=PATIENCE)

    page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    shoot(page, "delete.png")
    dialog.get_by_role("button", name=f"Yes, delete {fn}").click()
    expect(page.get_by_role("heading", name="Functions")).to_be_visible()
    expect(page.get_by_role("link", name=fn)).to_have_count(0)
    assert call(f"{stack.url}/system/function/{fn}", headers=auth(stack))[0] == 404


def test_a_form_cannot_be_sent_before_its_script_runs(chromium, stack):
    # Sent as a plain page request, a form would reload the page and lose what was typed: its
    # button is disabled until the script handles it (here, never: scripts are off).
    context = chromium.new_context(base_url=stack.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, stack)
        for path, button in (("/ui/secrets", "Create"), ("/ui/deploy", "Deploy")):
            page.goto(path)
            expect(page.get_by_role("button", name=button, exact=True)).to_be_disabled()
    finally:
        context.close()


def test_create_update_and_remove_a_secret(watched, stack):
    page = watched.page
    secret = name("ui-key")
    sign_in(page, stack)
    page.get_by_role("link", name="Secrets").click()
    page.get_by_label("Secret name").fill(secret)
    page.get_by_label("Value", exact=True).fill("first-value")
    page.get_by_role("button", name="Create").click()
    row = page.locator("#secrets tbody tr", has=page.get_by_role("rowheader", name=secret))
    expect(row).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(f"Secret {secret} created.")
    assert "first-value" not in page.content()
    shoot(page, "secrets.png")

    row.get_by_label(f"New value of {secret}").fill("second-value")
    row.get_by_role("button", name="Update").click()
    expect(page.get_by_role("status")).to_contain_text(f"Secret {secret} updated")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_have_text(f"Secret {secret} removed.")
    expect(row).to_have_count(0)
    names = [s["name"] for s in json.loads(call(f"{stack.url}/system/secrets", headers=auth(stack))[1])]
    assert secret not in names


def test_cancel_and_replay_an_async_call(watched, stack, watchdog_image):
    page = watched.page
    fn = name("ui-later")
    # A call whose body is "fail" gets a 500 and waits ten minutes in the queue for its second
    # try: time enough to cancel it from the page. The answer is markup, to be shown as text.
    retry = {"com.openfaas.retry.attempts": "2", "com.openfaas.retry.codes": "500", "com.openfaas.retry.min_wait": "10m"}
    deploy(stack, fn, 'body=$(cat); printf "<b>got %s</b>" "$body"; [ "$body" != fail ]', labels=retry)

    def accept(body: bytes) -> str:
        status, headers, _ = invoke(stack, f"/async-function/{fn}", "POST", body)
        assert status == 202
        return headers["X-Call-Id"]

    done, waiting = accept(b"ok"), accept(b"fail")
    sign_in(page, stack)
    page.get_by_role("link", name="Async", exact=True).click()
    page.get_by_label("Function", exact=True).fill(fn)
    page.get_by_label("Function", exact=True).press("Enter")  # a change, as leaving the box is
    rows = page.locator("#calls tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=done)).to_contain_text("succeeded", timeout=PATIENCE)
    expect(rows.filter(has_text=waiting)).to_contain_text("retrying", timeout=PATIENCE)
    page.get_by_label("State").select_option("retrying")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(waiting)
    page.get_by_label("State").select_option("all")
    expect(rows).to_have_count(2)
    shoot(page, "async.png")

    page.get_by_role("link", name=done).click()
    expect(page.locator("#state")).to_have_text("succeeded")
    expect(page.locator("#result-status")).to_have_text("200")
    expect(page.locator("#result-body")).to_have_text("<b>got ok</b>")  # shown as text, not markup
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_disabled()
    expect(page.get_by_role("button", name="Replay", exact=True)).to_be_enabled()
    shoot(page, "async-call.png", full_page=True)

    page.goto(f"/ui/async/{waiting}")
    expect(page.locator("#state")).to_have_text("retrying")
    expect(page.locator("#details")).to_contain_text("the function answered 500")
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.locator("#state")).to_have_text("cancelled")
    expect(page.get_by_role("status")).to_have_text("Cancelled: it will not run.")
    page.get_by_role("button", name="Replay", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Replayed: it is queued again.")
    # It runs again, gets its 500 again and waits for its second try again.
    expect(page.locator("#state")).to_have_text("retrying", timeout=PATIENCE)
    expect(page.locator("#history tbody tr")).to_have_count(1)
    expect(page.locator("#history tbody tr")).to_contain_text("cancelled")
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.locator("#state")).to_have_text("cancelled")
    record = json.loads(call(f"{stack.url}/system/async-calls/{waiting}", headers=auth(stack))[1])
    assert record["state"] == "cancelled" and [run["state"] for run in record["history"]] == ["cancelled"]

    # None of its calls is a dead letter: the button says so, and puts nothing back.
    page.get_by_role("link", name="Async", exact=True).click()
    page.get_by_label("Function", exact=True).fill(fn)
    page.get_by_label("Function", exact=True).press("Enter")
    expect(rows).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Replay dead letters").click()
    expect(page.get_by_role("status")).to_have_text("No dead letters to replay.")
    expect(rows.filter(has_text=waiting)).to_contain_text("cancelled")


def test_readable_at_a_phone_width(watched, stack, watchdog_image):
    page = watched.page
    fn = name("ui-phone")
    deploy(stack, fn, "cat")
    page.set_viewport_size(PHONE)
    sign_in(page, stack)
    expect(page.get_by_role("link", name=fn)).to_be_visible()
    # Nothing wider than the screen: the table scrolls inside its own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, "functions-phone.png")
    page.get_by_role("link", name=fn).click()
    expect(page.get_by_role("button", name="Invoke")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, "function-phone.png")


def test_the_events_feed_shows_a_deploy_and_a_scale(watched, stack, watchdog_image):
    page = watched.page
    fn = name("ui-events")
    sign_in(page, stack)
    page.get_by_role("link", name="Events").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Connected"))
    deploy(stack, fn, "cat")
    feed = page.get_by_role("list", name="Events, newest first")
    expect(feed.locator("li", has_text="function.deployed").filter(has=page.get_by_role("link", name=fn))).to_be_visible()
    assert call(f"{stack.url}/system/scale-function/{fn}", "POST", {"replicas": 2}, auth(stack))[0] == 202
    expect(feed.locator("li", has_text="function.scaled").filter(has_text=fn)).to_contain_text("from 1, to 2")
    expect(feed.locator("li", has_text="replica.started").filter(has_text=fn).first).to_be_visible(timeout=PATIENCE)
    shoot(page, "events.png")


def test_the_namespace_picker_shows_another_namespace(watched, stack, watchdog_image):
    page = watched.page
    namespace, fn = name("ui-ns"), name("ui-there")
    assert call(f"{stack.url}/system/namespace/", "POST", {"name": namespace}, auth(stack))[0] == 201
    try:
        body = {"service": fn, "image": CLASSIC_IMAGE, "namespace": namespace}
        assert call(f"{stack.url}/system/functions", "POST", body, auth(stack))[0] == 202
        sign_in(page, stack)
        expect(page.get_by_role("link", name=fn)).to_have_count(0)
        page.get_by_label("Namespace").select_option(namespace)
        page.get_by_role("link", name=fn).click()
        expect(page.locator("#details")).to_contain_text(namespace)
        expect(page.locator("#state")).to_have_text("ready", timeout=PATIENCE)
        page.get_by_label("Body", exact=True).fill("there")
        page.get_by_role("button", name="Invoke").click()
        expect(page.locator("#result-body")).to_have_text("there")
    finally:
        call(f"{stack.url}/system/functions", "DELETE", {"functionName": fn, "namespace": namespace}, auth(stack))
        # The namespace's network goes once the function's tasks have left it.
        wait_for(
            lambda: call(f"{stack.url}/system/namespace/{namespace}", "DELETE", None, auth(stack))[0] in (200, 404),
            timeout=60, what=f"namespace {namespace} to be removed",
        )
