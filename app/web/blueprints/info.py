"""GET /system/info (GatewayInfo)."""

from __future__ import annotations

import platform

from flask import Blueprint, jsonify

from app.version import PROVIDER_NAME, __version__
from app.web.schemas import GatewayInfoSchema
from app.web.state import settings

bp = Blueprint("info", __name__)
_INFO = GatewayInfoSchema()


@bp.get("/system/info")
def system_info():
    version = {"sha": settings().git_sha, "release": __version__}
    return jsonify(
        _INFO.dump(
            {
                "provider": {"provider": PROVIDER_NAME, "orchestration": "swarm", "version": version},
                "version": version,
                "arch": platform.machine(),
            }
        )
    )
