"""The one Docker client every part of the Swarm adapter shares, and the one translation of
Docker's failures into domain errors.

The adapter only ever reads, changes or removes services labelled ``com.openfaas.function``,
secrets labelled ``com.openfaas.owner=openfaas``, and networks and configs labelled
``com.openfaas.namespace`` under the names ``app.runtime.swarm.specs`` gives namespaces; a name
that belongs to anything else is "not found". ``docker_errors``: unreachable or not a manager is
BackendUnavailable (503); refusals keep Docker's own explanation in the sentence.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import docker
import requests
from docker.errors import APIError, DockerException
from urllib3.util import Retry

from app.config import Config
from app.errors import BackendFailure, BackendUnavailable, Conflict, InvalidRequest, NotFound

log = logging.getLogger(__name__)

# Pinned rather than negotiated so that building the client needs no running daemon; 1.41 is
# what Debian's docker.io (20.10) speaks, and newer engines still accept it.
DOCKER_API_VERSION = "1.41"
# Requests to Docker that keep their connection when sent at once (the SDK keeps 10): a node's
# replicas are measured all together, since each one-shot stats call waits for Docker's next
# sampling tick (up to a second) whatever the others do.
DOCKER_CONNECTIONS = 64

# Docker's own status codes that already mean what ours mean.
_MAPPED_STATUS = {400: InvalidRequest, 404: NotFound, 409: Conflict, 503: BackendUnavailable}


@contextlib.contextmanager
def docker_errors(action: str) -> Iterator[None]:
    """Turn transport failures and Docker's refusals into domain errors naming ``action``."""
    try:
        yield
    except APIError as exc:
        error = _MAPPED_STATUS.get(exc.status_code or 0, BackendFailure)
        if error is BackendFailure:
            log.warning("docker failed to %s: %s", action, exc.explanation)
        raise error(f"Docker could not {action}: {exc.explanation}") from None
    except requests.exceptions.Timeout:
        raise BackendUnavailable(f"Docker did not answer in time; could not {action}.") from None
    except (requests.exceptions.ConnectionError, DockerException) as exc:
        log.warning("docker unreachable; could not %s: %s", action, exc)
        raise BackendUnavailable(f"Docker is unreachable; could not {action}.") from None


class SwarmClient:
    """The docker SDK's low-level client, with the gateway's configuration beside it."""

    def __init__(self, config: Config, api: docker.APIClient | None = None):
        self.config = config
        self.default_namespace = config.namespace
        self._node_id = ""
        self.api = api or docker.APIClient(
            version=DOCKER_API_VERSION, timeout=config.docker_timeout, max_pool_size=DOCKER_CONNECTIONS,
            **docker.utils.kwargs_from_env(),
        )
        # After a daemon restart every pooled connection is dead; without a retry the first
        # request on each would fail although Docker is back. Only reads are retried, so a
        # create or update is never sent twice.
        self.api.get_adapter(self.api.base_url).max_retries = Retry(
            total=3, connect=2, read=1, status=0, allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False
        )

    def node_id(self) -> str:
        """The Swarm ID of this Docker's node (read once). Raises BackendUnavailable (503)."""
        if not self._node_id:
            with docker_errors("report its state"):
                self._node_id = (self.api.info().get("Swarm") or {}).get("NodeID") or ""
        return self._node_id

    def namespace(self, namespace: str | None) -> str:
        """``namespace``, or the default one for None."""
        return namespace or self.default_namespace

    def check_health(self) -> None:
        """Return when Docker answers as a Swarm manager. Raises BackendUnavailable (503)."""
        with docker_errors("report its state"):
            swarm = self.api.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            raise BackendUnavailable("Docker answers but this node is not part of a Swarm; run docker swarm init.")
        if not swarm.get("ControlAvailable"):
            raise BackendUnavailable("Docker answers but this node is not a Swarm manager.")

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Send one Engine API request; a non-2xx answer raises docker's APIError.

        The SDK's create and update calls take registry credentials only from the daemon's own
        config file, and its log calls hide the connection we must be able to close, so those
        requests are sent with the SDK's session directly.
        """
        response = self.api.request(method, f"{self.api.base_url}/v{self.api.api_version}{path}", **kwargs)
        try:
            response.raise_for_status()
        except requests.exceptions.HTTPError as exc:
            response.close()
            docker.errors.create_api_error_from_http_exception(exc)
        return response

    def engine(self, method: str, path: str, body: dict | None = None, **kwargs) -> dict:
        """``request`` with a JSON body, answering the JSON Docker sent back ({} for none)."""
        response = self.request(method, path, json=body, **kwargs)
        return response.json() if response.content else {}
