"""The runtime: what the gateway needs from an orchestrator, one small interface per concern
(``interfaces``), who leads the cluster-wide work (``leader``), and the Docker Swarm implementation
(``swarm``)."""
