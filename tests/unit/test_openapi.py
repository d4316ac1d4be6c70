"""The service against its own OpenAPI document, fuzzed with schemathesis.

The app runs in-process over the Swarm adapter and an in-memory Docker, with every function's calls going to a loopback
echo server, so thousands of generated requests (valid and deliberately invalid) take seconds.
The checks: no 5xx, every status code and content type documented, JSON bodies and required
headers as documented, schema-violating requests refused with a 4xx. A finding is fixed in the
service or, where the service is right, in the document: never silenced here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error

import app
from app import create_app
from app.config import Config
from app.dataplane.upstreams import Upstreams
from app.domain.images import IMAGE_PATTERN
from app.queue.sqlite import SQLiteQueue
from app.web.schemas import CONSTRAINT_PATTERN
from tests.fakes import fake_runtime
from tests.fuzzing import CHECKS
from tests.unit.helpers import AUTH, PASSWORD, USER, deployment
from tests.upstream import Echo, Lookup, serve

# 29 operations, positive and negative, plus undocumented methods: about 3,200 requests per run.
EXAMPLES = 100
# The proxy's 5xx are its documented answers (502, 503, 504 made by the proxy itself).
PROXY_ROUTES = ("/function/", "/async-function/")


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory):
    runtime = fake_runtime()
    with serve(Echo) as port:
        upstreams = Upstreams(
            runtime.functions, scale_from_zero=True, wait_timeout=1, lookup=Lookup(runtime.functions), port=port
        )
        queue = SQLiteQueue(str(tmp_path_factory.mktemp("queue") / "async.db"))
        # A short stream deadline: every valid /system/events case streams until it.
        config = Config(basic_auth_user=USER, basic_auth_password=PASSWORD, write_timeout=0.2, upstream_timeout=2)
        app = create_app(config, runtime, upstreams, queue)
        client = app.test_client()
        # Something to find: fuzzed names are mostly unknown, so seed a function and a secret.
        client.post("/system/secrets", json={"name": "api-key", "value": "k"}, headers=AUTH)
        client.post("/system/functions", json=deployment("echo", secrets=["api-key"]), headers=AUTH)
        yield app


DOCUMENT = Path(app.__file__).with_name("openapi.yaml")
schema = schemathesis.openapi.from_path(
    str(DOCUMENT),
    config=schemathesis.Config.from_dict(
        {
            # A fixed seed: a CI failure can be replayed exactly.
            "seed": 7001,
            "generation": {"mode": "all", "max-examples": EXAMPLES},
            "auth": {"basic": {"username": USER, "password": PASSWORD}},
            "suppress-health-check": ["too_slow", "filter_too_much"],
        }
    ),
)


@schema.parametrize()
def test_service_meets_its_document(case, fuzzed_app):
    proxied = case.path.startswith(PROXY_ROUTES)
    checks = [check for check in CHECKS if not (proxied and check is not_a_server_error)]
    case.call_and_validate(base_url="http://localhost", app=fuzzed_app, checks=checks)


def test_document_is_served_and_lists_every_route(fuzzed_app):
    """Every route in the URL map is in the document, and nothing is documented that isn't served;
    the dashboard's HTML pages (the ``ui`` blueprint) are for browsers, not part of the API."""
    response = fuzzed_app.test_client().get("/openapi.yaml")
    assert response.status_code == 200 and response.mimetype == "application/yaml"
    documented = {
        path.replace("{functionName}.{namespace}", "{functionName}").rstrip("/")
        for path in yaml.safe_load(response.data)["paths"]
    }
    served = set()
    for rule in fuzzed_app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("ui."):
            continue
        path = rule.rule.replace("<target>", "{functionName}").replace("<name>", "{functionName}")
        path = path.replace("<call_id>", "{callId}")
        path = path.replace("/system/namespace/{functionName}", "/system/namespace/{namespace}")
        if "<path:rest>" not in path:
            served.add(path.rstrip("/") or "/")
    assert served == documented


def test_documented_patterns_are_the_validators_own():
    fields = yaml.safe_load(DOCUMENT.read_text())["components"]["schemas"]["FunctionDeployment"]["properties"]
    assert fields["image"]["pattern"] == f"^{IMAGE_PATTERN}$"
    assert fields["constraints"]["items"]["pattern"] == f"^{CONSTRAINT_PATTERN}$"
