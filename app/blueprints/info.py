"""GET /system/info (GatewayInfo) and GET /system/namespaces."""

from __future__ import annotations

import platform

from flask import Blueprint, jsonify

import app as package
from app.schemas import GatewayInfoSchema
from app.state import settings

bp = Blueprint("info", __name__)
_INFO = GatewayInfoSchema()


@bp.get("/system/info")
def system_info():
    version = {"sha": settings().git_sha, "release": package.__version__}
    return jsonify(
        _INFO.dump(
            {
                "provider": {"provider": package.PROVIDER_NAME, "orchestration": "swarm", "version": version},
                "version": version,
                "arch": platform.machine(),
            }
        )
    )


@bp.get("/system/namespaces")
def namespaces():
    return jsonify([settings().namespace])
