"""What several unit-test modules share that is neither a fixture nor state: the credentials the
``config`` fixture sets, request bodies, and (below) generated inputs. Fixtures are in conftest.py;
no test module imports another, or conftest.py.
"""

from __future__ import annotations

import base64

USER, PASSWORD = "admin", "s3cret-pass"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


AUTH = basic(USER, PASSWORD)


def deployment(name: str = "echo", **extra) -> dict:
    return {"service": name, "image": "docker.io/functions/alpine:latest", "envProcess": "cat", **extra}


def webhook(*alerts: tuple[str, str], status: str = "firing") -> dict:
    """An Alertmanager body with one alert per (status, function_name), plus fields we ignore."""
    return {
        "receiver": "scale-up",
        "status": status,
        "alerts": [
            {
                "status": alert_status,
                "labels": {"alertname": "APIHighInvocationRate", "function_name": function, "code": "200"},
                "annotations": {"summary": "High invocation total"},
                "startsAt": "2017-03-15T15:52:57.805Z",
            }
            for alert_status, function in alerts
        ],
        "groupKey": 18195285354214864953,
        "version": "3",
    }
