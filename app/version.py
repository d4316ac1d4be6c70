"""What this gateway calls itself and its release, reported by GET /system/info."""

__version__ = "0.1.0"
PROVIDER_NAME = "faas-swarm-py"
