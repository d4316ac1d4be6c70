"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``.

The serving process starts here: logging as configured, the application built (which checks the
configuration), then the Swarm runtime prepared (Docker answers as a Swarm manager, the
functions network exists, the edge containers are on every namespace's network), so a gateway
that cannot work stops at once with the reason (ConfigError, BackendUnavailable) instead of
serving errors.
"""

import logging
import os

from app import create_app
from app.config import Config
from app.runtime.swarm.assembly import swarm_runtime

config = Config.from_env(os.environ)
logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
runtime = swarm_runtime(config)
app = create_app(config, runtime)
runtime.health.prepare()
