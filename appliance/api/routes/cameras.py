"""Cameras and areas: list, read, create, change, delete; a camera enabled or disabled. Writes go
through the profile-change path; only the cameras that changed restart."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from appliance.api.auth import SECURITY
from appliance.api.errors import ApiError, ErrorResponse, Responses
from appliance.api.routes.profile import WRITE_ERRORS, IfMatch, JsonObject, Outcome, context, if_match, with_etag
from appliance.api.routes.profile import outcome_response as changed
from appliance.api.unmask import patch_keeping_secrets
from appliance.config.secrets import MASK
from appliance.config.yamlio import ProfileDocument

IDENTIFIER = "^[a-z0-9][a-z0-9_-]{0,62}$"
READ_ERRORS: Responses = {401: ErrorResponse, 404: ErrorResponse, 422: ErrorResponse}


class ItemPath(BaseModel):
    item_id: str = Field(pattern=IDENTIFIER, description="Camera or area id")


class ItemList(BaseModel):
    items: list[dict[str, Any]]


def _entries(kind: str) -> list[dict[str, Any]]:
    return list(context().loaded.masked_data()[kind])


def _one(kind: str, item_id: str) -> dict[str, Any]:
    for entry in _entries(kind):
        if entry["id"] == item_id:
            return entry
    raise ApiError(404, "not_found", f"no {kind[:-1]} '{item_id}'")


def _edit(kind: str, change: Callable[[CommentedSeq], None]) -> Response:
    revision, ctx = if_match(), context()

    def edit(document: CommentedMap) -> None:
        if not isinstance(document.get(kind), list):
            document[kind] = CommentedSeq()
        change(document[kind])

    return changed(ctx.wait(ctx.changes.edit(edit, source="api", revision=revision)))


def _index(entries: Any, item_id: str) -> int | None:
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        if isinstance(entry, dict) and entry.get("id") == item_id:
            return index
    return None


def _in_file(kind: str, item_id: str) -> None:
    """404 when the entry does not exist; 409 when a profile this one extends defines it."""
    _one(kind, item_id)
    document = ProfileDocument.load(context().loaded.path)
    if _index(document.data.get(kind), item_id) is None:
        raise ApiError(409, "defined_elsewhere", f"{kind[:-1]} '{item_id}' is defined in a profile this one "
                       "extends; change it there")  # fmt: skip


def _at(entries: CommentedSeq, item_id: str) -> int:
    """Where the entry is, on the change path's thread; it went away meanwhile: the change fails."""
    index = _index(entries, item_id)
    if index is None:
        raise ValueError(f"'{item_id}' is no longer in the profile file")
    return index


def collection_routes(kind: str) -> APIBlueprint:
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
        item_id = body.root.get("id")
        if MASK in json.dumps(body.root):
            raise ApiError(422, "masked_secret", f"the body holds a masked secret ({MASK}); put the value or a "
                           "${env:}/${file:} reference")  # fmt: skip
        if any(entry["id"] == item_id for entry in _entries(kind)):
            raise ApiError(409, "exists", f"{singular} '{item_id}' exists already")
        return _edit(kind, lambda entries: entries.append(body.root))

    @routes.patch("/<item_id>", responses={200: Outcome, 404: ErrorResponse, 409: ErrorResponse, **WRITE_ERRORS},
                  operation_id=f"update_{singular}")  # fmt: skip
    def update(path: ItemPath, header: IfMatch, body: JsonObject) -> Response:
        """Merge-patch one entry (RFC 7396); its id cannot change."""
        if body.root.get("id", path.item_id) != path.item_id:
            raise ApiError(422, "id_changed", "an id cannot change; create a new entry and delete this one")
        _in_file(kind, path.item_id)
        shown = _one(kind, path.item_id)
        return _edit(kind, lambda entries: patch_keeping_secrets(entries[_at(entries, path.item_id)], body.root, shown))

    @routes.delete("/<item_id>", responses={200: Outcome, 404: ErrorResponse, 409: ErrorResponse, **WRITE_ERRORS},
                   operation_id=f"delete_{singular}")  # fmt: skip
    def delete(path: ItemPath, header: IfMatch) -> Response:
        _in_file(kind, path.item_id)
        return _edit(kind, lambda entries: entries.pop(_at(entries, path.item_id)))

    if kind == "cameras":
        for action, enabled in (("enable", True), ("disable", False)):
            _toggle_route(routes, action, enabled)
    return routes


def _toggle_route(routes: APIBlueprint, action: str, enabled: bool) -> None:
    @routes.post(f"/<item_id>/{action}", responses={200: Outcome, 404: ErrorResponse, 409: ErrorResponse,
                 **WRITE_ERRORS}, operation_id=f"{action}_camera", endpoint=f"{action}_camera")  # fmt: skip
    def toggle(path: ItemPath, header: IfMatch) -> Response:
        _in_file("cameras", path.item_id)

        def change(entries: CommentedSeq) -> None:
            entries[_at(entries, path.item_id)]["enabled"] = enabled

        return _edit("cameras", change)
