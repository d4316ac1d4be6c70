"""An OpenFaaS gateway and provider for Docker Swarm.

``create_app`` composes the Flask application and nothing else: the parts (configuration from
the environment, the runtime (one interface per concern, Docker Swarm's by default), upstreams,
the async queue and its worker, the background loops, the dashboard's time series), the request
guards (cross-site refusal, basic auth or a dashboard session on ``/system``, the body cap), one
blueprint per resource (the dashboard's pages are one more) and the error handlers. Logging and
the runtime's preparation belong to the process that serves it (``wsgi.py``).
"""

from __future__ import annotations

import os
from typing import Callable

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from app import metrics
from app.background.autoscaler import Autoscaler
from app.queue.cron import CronScheduler
from app.background.timeseries import TimeSeries
from app.background.usage import UsageSampler
from app.config import Config, ConfigError
from app.dataplane.calllog import OPEN_TOKEN, CallLog
from app.dataplane.forwarder import Forwarder
from app.dataplane.readiness import ReadinessProber, ReadinessView
from app.dataplane.upstreams import Upstreams
from app.domain.names import namespace_error
from app.domain.retries import gateway_policy
from app.queue import Queue, open_queue
from app.queue.worker import AsyncWorker, WorkerSettings
from app.runtime.interfaces import Runtime
from app.runtime.label_cache import FunctionLabels
from app.runtime.leader import FileLock, autoscaler_leadership, cron_leadership
from app.runtime.swarm.assembly import swarm_runtime
from app.web import state
from app.web.auth import install_basic_auth, install_sessions, is_protected, load_credentials
from app.web.blueprints import (
    alert,
    apidoc,
    async_calls,
    async_invoke,
    events,
    functions,
    healthz,
    info,
    invoke,
    logs,
    namespaces,
    prometheus,
    routing,
    scale,
    secrets,
    series,
    ui,
)
from app.web.signouts import open_sign_outs
from app.web.crosssite import install_cross_site_guard
from app.web.handlers import register_error_handlers
from app.web.shutdown import Shutdown
from app.web.streaming import StreamSlots

BLUEPRINTS = (
    healthz.bp,
    info.bp,
    namespaces.bp,
    functions.bp,
    scale.bp,
    secrets.bp,
    logs.bp,
    events.bp,
    invoke.bp,
    routing.bp,
    async_calls.bp,
    async_invoke.bp,
    alert.bp,
    prometheus.bp,
    apidoc.bp,
    series.bp,
    ui.bp,
)


def create_app(
    config: Config | None = None,
    runtime: Runtime | None = None,
    upstreams: Upstreams | None = None,
    queue: Queue | None = None,
) -> Flask:
    """Build the application; ``runtime`` defaults to the Swarm one, ``upstreams`` to task
    addresses from the orchestrator's DNS, ``queue`` to the configured async queue. Nothing is
    started and nothing is asked of Docker here: the process that serves the application
    prepares the runtime first (``wsgi.py``), and gunicorn's ``post_worker_init`` starts the
    background work in each worker process (``start_background_work``).

    Raises ConfigError for unusable configuration.
    """
    config = config or Config.from_env(os.environ)
    check_settings(config)
    parts = build_parts(config, runtime or swarm_runtime(config), upstreams, queue)

    app = Flask(__name__)
    app.json.sort_keys = False
    state.install(app, parts)
    register_request_guards(app, parts)
    register_blueprints(app)
    register_error_handlers(app)
    metrics.instrument(app)
    return app


def check_settings(config: Config) -> None:
    """The rules of other modules the configuration must meet (``app.config`` imports none).

    Raises ConfigError naming the variable.
    """
    error = namespace_error(config.namespace)
    if error:
        raise ConfigError(f"environment variable namespace: {error}")


def build_parts(config: Config, runtime: Runtime, upstreams: Upstreams | None, queue: Queue | None) -> state.Parts:
    """The parts the views use, from the given ones or the defaults for the rest."""
    functions = runtime.functions
    readiness_file = os.path.join(config.state_dir, "readiness.json")
    readiness = ReadinessView(readiness_file)
    upstreams = upstreams or Upstreams(
        functions, scale_from_zero=config.scale_from_zero, wait_timeout=config.scale_from_zero_timeout, view=readiness
    )
    forwarder = Forwarder(upstreams, config.upstream_timeout)
    queue = queue or open_queue(config.async_queue)
    credentials = load_credentials(config) if config.basic_auth else None
    return state.Parts(
        config=config,
        runtime=runtime,
        stream_slots=StreamSlots(config.max_log_streams),
        usage=UsageSampler(runtime.replicas),
        upstreams=upstreams,
        forwarder=forwarder,
        queue=queue,
        function_labels=FunctionLabels(functions),
        async_worker=AsyncWorker(queue, forwarder, WorkerSettings.from_config(config)),
        call_log=CallLog(config.call_log_port, credentials.call_log_token() if credentials else OPEN_TOKEN),
        autoscaler=Autoscaler(
            functions,
            runtime.replicas,
            autoscaler_leadership(config),
            interval=config.autoscaler_interval,
            stabilization=config.autoscaler_stabilization,
            namespace=config.namespace,
        ),
        cron=CronScheduler(
            functions,
            queue,
            cron_leadership(config),
            namespace=config.namespace,
            retry=gateway_policy(config.async_max_attempts),
            catch_up=config.cron_catch_up,
        ),
        time_series=TimeSeries(
            os.path.join(config.state_dir, "series.db"),
            functions,
            runtime.replicas,
            FileLock(os.path.join(config.state_dir, "series.lock")),
            interval=config.series_interval,
            namespace=config.namespace,
        ),
        readiness=readiness,
        prober=ReadinessProber(
            functions, readiness_file, FileLock(os.path.join(config.state_dir, "readiness.lock")), namespace=config.namespace
        ),
        credentials=credentials,
        shutdown=Shutdown(),
    )


def register_request_guards(app: Flask, parts: state.Parts) -> None:
    """What every request passes before its view: the cross-site refusal, then basic auth or the
    dashboard's signed-in session with its CSRF token on ``/system``, the body cap of the
    management API, and trust in exactly ``forwarded_hops`` proxies' X-Forwarded-* headers."""
    config = parts.config
    install_cross_site_guard(app)
    if parts.credentials is not None:
        install_sessions(app, parts.credentials, open_sign_outs(config))
        install_basic_auth(app, parts.credentials)

    @app.before_request
    def _limit_system_bodies() -> None:
        # Function invocations stream large bodies; only the management API is capped.
        if is_protected(request.path, request.method):
            request.max_content_length = config.max_body_bytes

    if config.forwarded_hops:
        hops = config.forwarded_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def register_blueprints(app: Flask) -> None:
    """One blueprint per resource; none imports another."""
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)


def start_background_work(app: Flask, stopping: Callable[[], bool] | None = None) -> None:
    """Start this process's async worker, its usage sampler (asleep until usage is asked for),
    its receiver of nginx's call log when its port is set, its autoscaler when switched on, the
    cron scheduler (one process of the cluster puts the runs), the dashboard's time series and
    the readiness prober (one process of each gateway samples and probes) (called once per
    gunicorn worker, after the fork); ``stopping`` says when the worker begins to stop."""
    parts = state.parts_of(app)
    if stopping is not None:
        parts.shutdown.follow(stopping)
    parts.async_worker.start()
    parts.usage.start()
    if parts.call_log.port:
        parts.call_log.start()
    if parts.config.autoscaler:
        parts.autoscaler.start()
    parts.cron.start()
    parts.time_series.start()
    parts.prober.start()
