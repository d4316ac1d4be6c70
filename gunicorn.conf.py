"""gunicorn settings: gevent workers, sizes and timeouts from the environment.

The worker timeout comes from ``Config.worker_timeout``, above every request deadline, so a
response still within its deadline (a long log stream, a slow function) is never killed.
"""

import glob
import os

# prometheus_client chooses multiprocess storage when it is first imported, which importing
# app.config below already does: the folder must be set and exist before that.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/faas-swarm-py/metrics")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from app.config import Config  # noqa: E402

_config = Config.from_env(os.environ)

bind = f"0.0.0.0:{_config.port}"
worker_class = "gevent"
workers = int(os.environ.get("workers", "2"))
worker_connections = int(os.environ.get("worker_connections", "1000"))
timeout = _config.worker_timeout
graceful_timeout = int(os.environ.get("graceful_timeout", "30"))
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
    """Each worker process consumes the async queue in the background, next to serving HTTP."""
    from app import start_async_worker

    start_async_worker(worker.wsgi)


def on_starting(server):
    """Once per master start: counts of earlier runs must not add into this one's."""
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def child_exit(server, worker):
    from app.metrics import mark_process_dead

    mark_process_dead(worker.pid)
