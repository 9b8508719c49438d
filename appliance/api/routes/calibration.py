"""A camera's floor calibration and its region of interest. Calibration points go in; the
homography and its reprojection error (cm) come out. Degenerate points are refused with the
validator's own messages, because the change goes through the same profile-change path."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field

from appliance.api.auth import SECURITY
from appliance.api.errors import ErrorResponse
from appliance.api.routes.cameras import READ_ERRORS, ItemPath, _one
from appliance.api.routes.profile import WRITE_ERRORS, IfMatch, context, if_match
from appliance.config.edits import SetCalibration, SetRoi
from appliance.geometry import fit_homography
from appliance.runtime.commands import EditProfile

Coordinate = Annotated[float, Field(ge=-100_000, le=100_000, strict=True)]  # strict: true is not 1.0
Pair = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]


class CalibrationPoint(BaseModel):
    image: Pair = Field(description="Pixel (x, y) in the camera's picture")
    floor: Pair = Field(description="Floor position (x, y) in cm")


class Calibration(BaseModel):
    points: list[CalibrationPoint] = Field(max_length=64)


class CalibrationResult(BaseModel):
    points: list[CalibrationPoint]
    homography: list[list[float]] | None = Field(description="Image pixels to floor cm, 3x3; null when uncalibrated")
    reprojection_error_cm: float | None


class Roi(BaseModel):
    roi: list[Pair] | None = Field(max_length=256, description="Polygon in pixels; null: the whole picture")


def _result(camera_id: str) -> dict[str, Any]:
    calibration = context().loaded.profile.camera(camera_id).distance.calibration or ()
    points = [{"image": list(p.image), "floor": list(p.floor)} for p in calibration]
    if not points:
        return {"points": [], "homography": None, "reprojection_error_cm": None}
    fitted = fit_homography([p.image for p in calibration], [p.floor for p in calibration])
    return {"points": points, "homography": fitted.matrix.tolist(),
            "reprojection_error_cm": round(fitted.reprojection_error_cm, 3)}  # fmt: skip


def calibration_routes() -> APIBlueprint:
    routes = APIBlueprint("calibration", __name__, url_prefix="/api/v1/cameras", abp_tags=[Tag(name="cameras")],
                          abp_security=SECURITY)  # fmt: skip

    @routes.get("/<item_id>/calibration", responses={200: CalibrationResult, **READ_ERRORS})
    def read(path: ItemPath) -> Response:
        """The camera's calibration points, homography and reprojection error."""
        _one("cameras", path.item_id)
        return jsonify(_result(path.item_id))

    @routes.put("/<item_id>/calibration", responses={200: CalibrationResult, 404: ErrorResponse, 409: ErrorResponse,
                **WRITE_ERRORS})  # fmt: skip
    def write(path: ItemPath, header: IfMatch, body: Calibration) -> Response:
        """Calibrate the camera (distance method `calibrated`); at least 4 points, no 3 of any 4
        on a line. Returns the fitted homography and its mean reprojection error in cm."""
        points = tuple(((p.image[0], p.image[1]), (p.floor[0], p.floor[1])) for p in body.points)
        context().change(EditProfile(SetCalibration(path.item_id, points), source="api", revision=if_match()))
        return jsonify(_result(path.item_id))

    @routes.put("/<item_id>/roi", responses={200: Roi, 404: ErrorResponse, 409: ErrorResponse, **WRITE_ERRORS})
    def write_roi(path: ItemPath, header: IfMatch, body: Roi) -> Response:
        """Count only people whose feet are inside this polygon; null counts everywhere."""
        polygon = None if body.roi is None else tuple((x, y) for x, y in body.roi)
        context().change(EditProfile(SetRoi(path.item_id, polygon), source="api", revision=if_match()))
        return jsonify({"roi": body.roi})

    return routes
