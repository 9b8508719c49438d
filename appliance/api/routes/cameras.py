"""Cameras and areas: list, read, create, change, delete; a camera enabled or disabled. Writes go
through the profile-change path; only the cameras that changed restart."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field

from appliance.api.auth import SECURITY
from appliance.api.errors import ApiError, ErrorResponse, Responses
from appliance.api.routes.profile import WRITE_ERRORS, IfMatch, JsonObject, Outcome, context, if_match, with_etag
from appliance.api.routes.profile import outcome_response as changed
from appliance.config.edits import AddEntry, Collection, PatchEntry, ProfileEdit, RemoveEntry, SetCameraEnabled
from appliance.runtime.commands import EditProfile

IDENTIFIER = "^[a-z0-9][a-z0-9_-]{0,62}$"
READ_ERRORS: Responses = {401: ErrorResponse, 404: ErrorResponse, 422: ErrorResponse}


class ItemPath(BaseModel):
    item_id: str = Field(pattern=IDENTIFIER, description="Camera or area id")


class ItemList(BaseModel):
    items: list[dict[str, Any]]


def _entries(kind: Collection) -> list[dict[str, Any]]:
    return list(context().loaded.masked_data()[kind])


def _one(kind: Collection, item_id: str) -> dict[str, Any]:
    for entry in _entries(kind):
        if entry["id"] == item_id:
            return entry
    raise ApiError(404, "not_found", f"no {kind[:-1]} '{item_id}'")


def change(edit: ProfileEdit) -> Response:
    return changed(context().change(EditProfile(edit, source="api", revision=if_match())))


def collection_routes(kind: Collection) -> APIBlueprint:
    """The routes of `cameras` or `areas`."""
    routes = APIBlueprint(kind, __name__, url_prefix=f"/api/v1/{kind}", abp_tags=[Tag(name=kind)],
                          abp_security=SECURITY)  # fmt: skip
    singular = kind[:-1]

    @routes.get("", responses={200: ItemList, 401: ErrorResponse}, operation_id=f"list_{kind}")
    def list_items() -> Response:
        return with_etag(jsonify({"items": _entries(kind)}))

    @routes.get("/<item_id>", responses={200: JsonObject, **READ_ERRORS}, operation_id=f"read_{singular}")
    def read(path: ItemPath) -> Response:
        """The item, with the profile's revision as its ETag (for If-Match on a change)."""
        return with_etag(jsonify(_one(kind, path.item_id)))

    @routes.post("", responses={200: Outcome, 409: ErrorResponse, **WRITE_ERRORS}, operation_id=f"create_{singular}")
    def create(header: IfMatch, body: JsonObject) -> Response:
        return change(AddEntry(kind, body.root))

    @routes.patch("/<item_id>", responses={200: Outcome, 404: ErrorResponse, 409: ErrorResponse, **WRITE_ERRORS},
                  operation_id=f"update_{singular}")  # fmt: skip
    def update(path: ItemPath, header: IfMatch, body: JsonObject) -> Response:
        """Merge-patch one entry (RFC 7396); its id cannot change."""
        return change(PatchEntry(kind, path.item_id, body.root))

    @routes.delete("/<item_id>", responses={200: Outcome, 404: ErrorResponse, 409: ErrorResponse, **WRITE_ERRORS},
                   operation_id=f"delete_{singular}")  # fmt: skip
    def delete(path: ItemPath, header: IfMatch) -> Response:
        return change(RemoveEntry(kind, path.item_id))

    if kind == "cameras":
        for action, enabled in (("enable", True), ("disable", False)):
            _toggle_route(routes, action, enabled)
    return routes


def _toggle_route(routes: APIBlueprint, action: str, enabled: bool) -> None:
    @routes.post(f"/<item_id>/{action}", responses={200: Outcome, 404: ErrorResponse, 409: ErrorResponse,
                 **WRITE_ERRORS}, operation_id=f"{action}_camera", endpoint=f"{action}_camera")  # fmt: skip
    def toggle(path: ItemPath, header: IfMatch) -> Response:
        return change(SetCameraEnabled(path.item_id, enabled))
