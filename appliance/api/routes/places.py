"""A camera's zones and lines: list, read, create, change, delete. Writes are named edits through
the profile-change path; the camera takes them in place, without a restart."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field

from appliance.api.auth import SECURITY
from appliance.api.errors import ApiError, ErrorResponse
from appliance.api.routes.cameras import IDENTIFIER, READ_ERRORS, ItemList, change
from appliance.api.routes.profile import WRITE_ERRORS, IfMatch, JsonObject, Outcome, context, with_etag
from appliance.config.edits import AddPlace, PatchPlace, PlaceKind, RemovePlace


class CameraPath(BaseModel):
    camera_id: str = Field(pattern=IDENTIFIER, description="Camera id")


class PlacePath(CameraPath):
    place_id: str = Field(pattern=IDENTIFIER, description="Zone or line id")


def _places(camera_id: str, kind: PlaceKind) -> list[dict[str, Any]]:
    for camera in context().loaded.masked_data()["cameras"]:
        if camera["id"] == camera_id:
            return list(camera.get(kind) or [])
    raise ApiError(404, "not_found", f"no camera '{camera_id}'")


def _place(camera_id: str, kind: PlaceKind, place_id: str) -> dict[str, Any]:
    for place in _places(camera_id, kind):
        if place["id"] == place_id:
            return place
    raise ApiError(404, "not_found", f"camera '{camera_id}' has no {kind[:-1]} '{place_id}'")


def place_routes(kind: PlaceKind) -> APIBlueprint:
    """The routes of every camera's `zones` or `lines`."""
    routes = APIBlueprint(kind, __name__, url_prefix="/api/v1/cameras", abp_tags=[Tag(name=kind)],
                          abp_security=SECURITY)  # fmt: skip
    singular = kind[:-1]
    changes = {200: Outcome, 404: ErrorResponse, 409: ErrorResponse, **WRITE_ERRORS}

    @routes.get(f"/<camera_id>/{kind}", responses={200: ItemList, **READ_ERRORS}, operation_id=f"list_{kind}")
    def list_places(path: CameraPath) -> Response:
        return with_etag(jsonify({"items": _places(path.camera_id, kind)}))

    @routes.get(f"/<camera_id>/{kind}/<place_id>", responses={200: JsonObject, **READ_ERRORS},
                operation_id=f"read_{singular}")  # fmt: skip
    def read(path: PlacePath) -> Response:
        return with_etag(jsonify(_place(path.camera_id, kind, path.place_id)))

    @routes.post(f"/<camera_id>/{kind}", responses=changes, operation_id=f"create_{singular}")
    def create(path: CameraPath, header: IfMatch, body: JsonObject) -> Response:
        return change(AddPlace(path.camera_id, kind, body.root))

    @routes.patch(f"/<camera_id>/{kind}/<place_id>", responses=changes, operation_id=f"update_{singular}")
    def update(path: PlacePath, header: IfMatch, body: JsonObject) -> Response:
        """Merge-patch one entry (RFC 7396); its id cannot change."""
        return change(PatchPlace(path.camera_id, kind, path.place_id, body.root))

    @routes.delete(f"/<camera_id>/{kind}/<place_id>", responses=changes, operation_id=f"delete_{singular}")
    def delete(path: PlacePath, header: IfMatch) -> Response:
        return change(RemovePlace(path.camera_id, kind, path.place_id))

    return routes
