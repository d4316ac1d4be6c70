"""An OpenFaaS gateway and provider for Docker Swarm.

``create_app`` builds the Flask application: configuration from the environment, the refusal of
cross-site changes and basic auth on ``/system``, one blueprint per resource, the error handlers,
and the Swarm provider, which is checked (Docker answers, this node is a Swarm manager, the
functions network exists) before the application is returned.
"""

from __future__ import annotations

import logging
import os

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from app.auth import install_basic_auth, is_protected, load_credentials
from app.async_worker import AsyncWorker, WorkerSettings
from app import metrics
from app.blueprints import alert, apidoc, async_invoke, functions, healthz, info, logs, proxy, routes, scale, secrets
from app.blueprints import metrics as metrics_routes
from app.calllog import CallLog
from app.config import Config
from app.crosssite import install_cross_site_guard
from app.errors import register_error_handlers
from app.provider import LogSource, Provider
from app.streaming import StreamSlots
from app.proxy import Forwarder
from app.queue import Queue, open_queue
from app.swarm.logs import SwarmLogSource
from app.swarm.provider import SwarmProvider
from app.upstreams import Upstreams


def create_app(
    config: Config | None = None,
    provider: Provider | None = None,
    log_source: LogSource | None = None,
    upstreams: Upstreams | None = None,
    queue: Queue | None = None,
) -> Flask:
    """Build the application; ``provider`` and ``log_source`` default to the Swarm ones,
    ``upstreams`` to task addresses from Swarm's DNS, ``queue`` to the configured async queue.
    The async worker is created but not started: gunicorn's ``post_worker_init`` starts one per
    worker process (``start_background_work``).

    Raises ConfigError for unusable configuration and BackendUnavailable when Docker cannot be
    used at start, so a broken gateway stops at once with the reason instead of serving errors.
    """
    config = config or Config.from_env(os.environ)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    provider = provider or SwarmProvider(config)
    log_source = log_source or SwarmLogSource(provider)
    upstreams = upstreams or Upstreams(
        provider, scale_from_zero=config.scale_from_zero, wait_timeout=config.scale_from_zero_timeout
    )
    provider.ensure_ready()

    app = Flask(__name__)
    app.extensions["openfaas.config"] = config
    app.extensions["openfaas.provider"] = provider
    app.extensions["openfaas.logs"] = log_source
    app.extensions["openfaas.log_slots"] = StreamSlots(config.max_log_streams)
    app.extensions["openfaas.upstreams"] = upstreams
    app.extensions["openfaas.call_log"] = CallLog(
        config.call_log_port, lambda: {status.name for status in provider.list_functions()}
    )
    forwarder = Forwarder(upstreams, config.upstream_timeout)
    queue = queue or open_queue(config.async_queue)
    app.extensions["openfaas.forwarder"] = forwarder
    app.extensions["openfaas.queue"] = queue
    app.extensions["openfaas.async_worker"] = AsyncWorker(
        queue,
        forwarder,
        WorkerSettings(
            concurrency=config.async_concurrency,
            per_function=config.async_function_concurrency,
            max_attempts=config.async_max_attempts,
            claim_timeout=config.async_claim_timeout,
        ),
    )
    app.json.sort_keys = False
    metrics.instrument(app)
    register_error_handlers(app)
    install_cross_site_guard(app)
    if config.basic_auth:
        install_basic_auth(app, load_credentials(config))

    @app.before_request
    def _limit_system_bodies() -> None:
        # Function invocations stream large bodies; only the management API is capped.
        if is_protected(request.path):
            request.max_content_length = config.max_body_bytes

    if config.forwarded_hops:
        # Behind nginx: trust exactly that many proxies' X-Forwarded-* headers, no more.
        hops = config.forwarded_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    for blueprint in (
        healthz.bp,
        info.bp,
        functions.bp,
        scale.bp,
        secrets.bp,
        logs.bp,
        proxy.bp,
        routes.bp,
        async_invoke.bp,
        alert.bp,
        metrics_routes.bp,
        apidoc.bp,
    ):
        app.register_blueprint(blueprint)
    return app


def start_background_work(app: Flask) -> None:
    """Start this process's async worker and, when its port is set, its receiver of nginx's call
    log (called once per gunicorn worker, after the fork)."""
    app.extensions["openfaas.async_worker"].start()
    if app.extensions["openfaas.call_log"].port:
        app.extensions["openfaas.call_log"].start()
