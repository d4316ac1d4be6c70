"""gunicorn settings: gevent workers, sizes and timeouts from the environment.

The worker timeout comes from ``Config.worker_timeout``, above every request deadline, so a
response still within its deadline (a long log stream, a slow function) is never killed.
"""

import os

from app.config import Config

_config = Config.from_env(os.environ)

bind = f"0.0.0.0:{_config.port}"
worker_class = "gevent"
workers = int(os.environ.get("workers", "2"))
worker_connections = int(os.environ.get("worker_connections", "1000"))
timeout = _config.worker_timeout
graceful_timeout = int(os.environ.get("graceful_timeout", "30"))
keepalive = 75
accesslog = "-"
# nginx passes X-Request-Id (its own when the client sent none), so both logs share it.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(a)s" rid=%({x-request-id}i)s rt=%(M)sms'
errorlog = "-"
loglevel = _config.log_level
