"""Liveness, readiness, version, and the current counts."""

from __future__ import annotations

import time

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel

from appliance import __version__
from appliance.api.auth import SECURITY
from appliance.api.errors import ErrorResponse
from appliance.api.routes.profile import context
from appliance.buildinfo import load_build_info
from appliance.runtime.serialize import camera_state_json, mask_counts_json, outputs_json, to_json


class Health(BaseModel):
    status: str
    cameras: dict[str, str] = {}


class Version(BaseModel):
    version: str
    profile: str
    device: str
    generation: int
    model_sha256: str | None
    uptime_s: float
    build: dict[str, object] | None = None  # what the image was built from; null outside a built image


class Outputs(BaseModel):
    outputs: dict[str, dict[str, object]]


class Counts(BaseModel):
    cameras: dict[str, dict[str, object]]
    areas: dict[str, dict[str, object]]
    zones: dict[str, dict[str, object]]  # by CAMERA/ZONE
    lines: dict[str, dict[str, object]]  # by CAMERA/LINE: the last crossing, with the line's counts after it
    masks: dict[str, dict[str, dict[str, object]]]  # cameras: their last `masks` minute; areas: the sums


def system_routes() -> APIBlueprint:
    routes = APIBlueprint("system", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="system")])

    @routes.get("/health/live", responses={200: Health})
    def live() -> Response:
        """The API answers (no login needed)."""
        return jsonify({"status": "ok"})

    @routes.get("/health/ready", responses={200: Health, 503: Health})
    def ready() -> Response:
        """Ready when every enabled camera reports frames (no login needed)."""
        ctx = context()
        cameras = ctx.state.snapshot().cameras
        enabled = [c.id for c in ctx.loaded.profile.cameras if c.enabled]
        statuses = {
            camera_id: cameras[camera_id].status if camera_id in cameras else "starting" for camera_id in enabled
        }
        ok = all(status in ("online", "finished") for status in statuses.values())
        response = jsonify({"status": "ready" if ok else "not_ready", "cameras": statuses})
        response.status_code = 200 if ok else 503
        return response

    @routes.get("/version", responses={200: Version, 401: ErrorResponse}, security=SECURITY)
    def version() -> Response:
        """Version, profile, model and uptime."""
        ctx = context()
        device = ctx.state.snapshot().device
        return jsonify(Version(version=__version__, profile=device.profile, device=device.device_id,
                               generation=device.generation, model_sha256=ctx.loaded.profile.detector.model.sha256,
                               uptime_s=round(device.uptime_s, 1), build=load_build_info()).model_dump())  # fmt: skip

    @routes.get("/outputs", responses={200: Outputs, 401: ErrorResponse}, security=SECURITY)
    def outputs() -> Response:
        """Each active output's health (MQTT, notification channels as email/ID, slack/ID, webhook/ID,
        S3 as s3/screenshots and s3/backup): up, the problem in words, messages waiting, delivered
        and lost."""
        return jsonify({"outputs": outputs_json(context().state.snapshot().device.outputs)})

    @routes.get("/counts", responses={200: Counts, 401: ErrorResponse}, security=SECURITY)
    def counts() -> Response:
        """People and people in violation now, per camera, area and zone, and each line's counts
        after its last crossing (CAMERA/ZONE, CAMERA/LINE), and with `masks` on, each camera's last
        minute of face-mask verdicts and each area's sum of them. Each `t` is the time of the frame
        counted, as on MQTT: Unix time for live cameras, video time for recordings; a camera with
        no frame yet has the time of the answer."""
        snapshot = context().state.snapshot()
        now = time.time()
        cameras = {i: camera_state_json(c, now if c.t is None else c.t) for i, c in snapshot.cameras.items()}
        areas = {i: to_json(a) for i, a in snapshot.areas.items()}
        zones = {i: to_json(z) for i, z in snapshot.zones.items()}
        lines = {i: to_json(line) for i, line in snapshot.lines.items()}
        masks = {"cameras": {i: to_json(m) for i, m in snapshot.masks.items()},
                 "areas": {i: mask_counts_json(c) for i, c in snapshot.area_masks.items()}}  # fmt: skip
        return jsonify({"cameras": cameras, "areas": areas, "zones": zones, "lines": lines, "masks": masks})

    return routes
