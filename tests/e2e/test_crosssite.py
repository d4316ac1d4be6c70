"""Cross-site refusal through nginx: a browser's change from another site's page is 403, the
gateway's own origin and clients that are not browsers get through."""

from __future__ import annotations

import json

import pytest

from harness import basic_auth
from tests.gateway import call
from tests.swarm import name

# A JSON body labelled text/plain, which another site's page can send without a CORS preflight.
TEXT_PLAIN = {"Content-Type": "text/plain"}


def _functions(stack) -> list[str]:
    status, body, _ = call(f"{stack.url}/system/functions", headers=basic_auth(stack.user, stack.password))
    assert status == 200
    return [function["name"] for function in json.loads(body)]


@pytest.mark.parametrize(
    "browser",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}],
)
def test_a_cross_site_deploy_through_nginx_is_403(stack, watchdog_image, browser):
    fn = name("csrf")
    body = {"service": fn, "image": watchdog_image}
    headers = {**basic_auth(stack.user, stack.password), **TEXT_PLAIN, **browser}
    status, text, response_headers = call(f"{stack.url}/system/functions", "POST", body, headers)
    assert status == 403, text
    assert response_headers["Content-Type"].startswith("text/plain")
    assert fn not in _functions(stack)


def test_the_gateways_own_origin_and_plain_clients_pass_the_check(stack):
    # An invalid body, so the answer shows the request got past the check without deploying.
    body = {"service": "Not_A_Name", "image": "x"}
    auth = basic_auth(stack.user, stack.password)
    for browser in ({"Origin": stack.url, "Sec-Fetch-Site": "same-origin"}, {}):
        status, text, _ = call(f"{stack.url}/system/functions", "POST", body, {**auth, **browser})
        assert status == 400 and b"service" in text, text
