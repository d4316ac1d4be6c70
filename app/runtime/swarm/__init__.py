"""The Docker Swarm runtime: the only package that imports ``docker``. ``assembly.swarm_runtime``
builds it; each module implements one concern over the one client of ``client``."""
