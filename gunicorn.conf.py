"""gunicorn settings: gevent workers, with sizes and timeouts from the gateway's ``Config``.

The worker timeout comes from ``Config.worker_timeout``, above every request deadline, so a
response still within its deadline (a long log stream, a slow function) is never killed.
"""

import glob
import importlib.util
import math
import os
import sys


def _config_module():
    """app/config.py loaded on its own, without the ``app`` package around it: importing the
    package imports prometheus_client, which chooses multiprocess storage once, at import, from
    PROMETHEUS_MULTIPROC_DIR; that folder is derived from the configuration, so it must be set
    from the configuration before the package is imported."""
    package = importlib.util.find_spec("app")  # finds the package without running it
    path = os.path.join(package.submodule_search_locations[0], "config.py")
    spec = importlib.util.spec_from_file_location("_gateway_config", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks the module up while building Config
    spec.loader.exec_module(module)
    return module


_config = _config_module().Config.from_env(os.environ)
# The gateway's own files, private to its user: the async queue holds request bodies.
for _folder in (_config.state_dir, _config.metrics_dir):
    os.makedirs(_folder, mode=0o700, exist_ok=True)
# Always this instance's own folder, whatever the environment held: on_starting empties it.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _config.metrics_dir

bind = f"0.0.0.0:{_config.port}"
worker_class = "gevent"
workers = _config.workers
worker_connections = _config.worker_connections
timeout = _config.worker_timeout
graceful_timeout = math.ceil(_config.graceful_timeout)  # gunicorn takes whole seconds
keepalive = 75
# Header limits, matching nginx's large_client_header_buffers (8 KiB a line): larger is a 431.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"
# nginx passes X-Request-Id (its own when the client sent none), so both logs share it.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(a)s" rid=%({x-request-id}i)s rt=%(M)sms'
errorlog = "-"
# gunicorn's runtime control socket is not used, and its default place is the user's home,
# which the gateway's unprivileged user does not have.
control_socket_disable = True
loglevel = _config.log_level


def post_worker_init(worker):
    """Each worker process of a gateway consumes the async queue and nginx's call log in the
    background, next to serving HTTP; a node agent (app.agent, the same image) has no such work.
    A request that waits on purpose ends once the worker is told to stop (``alive`` turns false
    at SIGTERM, before gunicorn waits for the requests in flight)."""
    from app import start_background_work
    from app.web import state

    if state.has_parts(worker.wsgi):
        start_background_work(worker.wsgi, stopping=lambda: not worker.alive)


def on_starting(server):
    """Once per master start: counts of earlier runs must not add into this one's."""
    for path in glob.glob(os.path.join(_config.metrics_dir, "*.db")):
        os.remove(path)


def child_exit(server, worker):
    from app.metrics import mark_process_dead

    mark_process_dead(worker.pid)
