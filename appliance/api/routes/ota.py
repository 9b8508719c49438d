"""Over-the-air updates: where they stand and what became of each bundle, read from the OTA
state folder (the same as `appliance ota status`). Bundles arrive through the inbox, not here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field

from appliance.api.auth import SECURITY
from appliance.api.errors import ErrorResponse
from appliance.api.routes.profile import context
from appliance.ota.applier import read_status


class UpdateResultBody(BaseModel):
    bundle: str
    outcome: Literal["installed", "rejected", "rolled_back"]
    at: float = Field(description="Unix time")
    version: int | None
    kind: Literal["config", "model", "both"] | None
    reason: str | None = Field(description="Why it was refused or rolled back (docs/ota.md lists every reason)")
    message: str
    description: str = Field(description="The bundle's release notes")


class InProgress(BaseModel):
    bundle: str
    state: str = Field(description="The journal's state: received, verified, staged, switched, health, ...")


class OtaStatus(BaseModel):
    enabled: bool = Field(description="Whether this runtime applies bundles (ota.enabled with trusted keys)")
    inbox: str
    slot: Literal["a", "b"] | None = Field(description="The committed slot; null for the profile as set up")
    installed_version: int
    installed_description: str
    in_progress: InProgress | None
    last_result: UpdateResultBody | None


class OtaHistory(BaseModel):
    items: list[UpdateResultBody] = Field(description="Newest first, at most the last 100 bundles")


def _status() -> dict[str, Any]:
    config = context().loaded.profile.ota
    return {"enabled": config.active, "inbox": config.inbox,
            **read_status(Path(config.state_dir))}  # fmt: skip


def ota_routes() -> APIBlueprint:
    routes = APIBlueprint("ota", __name__, url_prefix="/api/v1/ota", abp_tags=[Tag(name="ota")],
                          abp_security=SECURITY)  # fmt: skip

    @routes.get("/status", responses={200: OtaStatus, 401: ErrorResponse})
    def status() -> Response:
        """The installed slot and version, the bundle being applied, the last result."""
        body = _status()
        del body["history"]
        return jsonify(body)

    @routes.get("/history", responses={200: OtaHistory, 401: ErrorResponse})
    def history() -> Response:
        """What became of each bundle, newest first."""
        return jsonify({"items": _status()["history"]})

    return routes
