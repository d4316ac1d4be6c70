"""WSGI entry point of the node agent: ``gunicorn -c gunicorn.conf.py app.agent.wsgi:app`` (with
``port=8081``), in the gateway's image (docs/cluster.md)."""

import logging
import os

from app.agent import create_agent
from app.config import Config

config = Config.from_env(os.environ)
logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_agent(config)
