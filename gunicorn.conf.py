"""gunicorn settings: gevent workers, sizes and timeouts from the environment.

The worker timeout is kept above the write timeout so a response that is still within its
deadline (a long log stream, a slow function) is never killed as a stuck worker.
"""

import os

from app.config import Config

_config = Config.from_env(os.environ)

bind = f"0.0.0.0:{_config.port}"
worker_class = "gevent"
workers = int(os.environ.get("workers", "2"))
worker_connections = int(os.environ.get("worker_connections", "1000"))
timeout = int(max(_config.read_timeout, _config.write_timeout, _config.upstream_timeout)) + 30
graceful_timeout = int(os.environ.get("graceful_timeout", "30"))
keepalive = 75
accesslog = "-"
errorlog = "-"
loglevel = _config.log_level
