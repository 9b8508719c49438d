"""The profile: read it (JSON or YAML, secrets masked), replace it, or patch it, and its sections;
every write through the profile-change path, with `If-Match` against the file's revision."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field, RootModel

from appliance.api.auth import SECURITY
from appliance.api.context import ApiContext
from appliance.api.errors import ApiError, ErrorResponse, Responses
from appliance.config import LoadedProfile
from appliance.config.edits import PatchProfile, Section
from appliance.config.paths import masked_url
from appliance.config.secrets import MASK, REDACTOR
from appliance.config.yamlio import ProfileDocument
from appliance.runtime.changes import ChangeOutcome
from appliance.runtime.commands import EditProfile, ReplaceProfile

SECTIONS = ("detector", "tracker", "motion", "distancing", "anonymizer")
WRITE_ERRORS: Responses = {401: ErrorResponse, 403: ErrorResponse, 412: ErrorResponse, 422: ErrorResponse}


class JsonObject(RootModel[dict[str, Any]]):
    """A JSON object, checked by the profile's own rules when applied."""


class Outcome(BaseModel):
    """What a change did."""

    generation: int = Field(description="Profile changes applied since start")
    revision: str = Field(description="The profile file's new revision (its ETag)")
    restarted: list[str] = []
    added: list[str] = []
    removed: list[str] = []
    reconfigured: list[str] = Field(default=[], description="Cameras that took the change without a restart")
    unchanged: bool = False


class IfMatch(BaseModel):
    """Writes say which revision of the profile they change."""

    if_match: str = Field(alias="If-Match", max_length=200, description="The ETag of the profile as read")


class SectionPath(BaseModel):
    section: Section


def context() -> ApiContext:
    return current_app.config["APPLIANCE_CONTEXT"]  # type: ignore[no-any-return]


def if_match() -> str:
    """The revision the caller read (the `If-Match` header every write has, see IfMatch)."""
    return request.headers.get("If-Match", "").strip().removeprefix("W/").strip('"')


def with_etag(response: Response) -> Response:
    response.headers["ETag"] = f'"{context().revision()}"'
    return response


def outcome_response(outcome: ChangeOutcome) -> Response:
    body = Outcome(generation=outcome.generation, revision=outcome.revision, restarted=list(outcome.restarted),
                   added=list(outcome.added), removed=list(outcome.removed),
                   reconfigured=list(outcome.reconfigured), unchanged=outcome.unchanged)  # fmt: skip
    response = jsonify(body.model_dump())
    response.headers["ETag"] = f'"{outcome.revision}"'
    return response


def masked_file(loaded: LoadedProfile) -> str:
    """The profile file as written, comments kept, with each secret masked by its place: the
    value of every secret key (however the YAML spells it: escapes, quotes, a reference) and the
    password and token components of camera URLs. Then, as a last net, any secret value still
    found in the text."""
    document = ProfileDocument.load(loaded.path)
    for path in loaded.secrets:
        parent: Any = _node(document.data, path[:-1])
        if _holds(parent, path[-1]) and parent[path[-1]] is not None:
            parent[path[-1]] = MASK
    for camera in document.data.get("cameras") or ():
        if isinstance(camera, dict) and isinstance(camera.get("source"), str) and "://" in camera["source"]:
            camera["source"] = masked_url(camera["source"], MASK)
    return REDACTOR.redact(document.dumps())


def _node(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if not _holds(data, part):
            return None
        data = data[part]
    return data


def _holds(container: Any, key: str | int) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container)


def profile_routes() -> APIBlueprint:
    routes = APIBlueprint("profile", __name__, url_prefix="/api/v1/profile", abp_tags=[Tag(name="profile")],
                          abp_security=SECURITY)  # fmt: skip

    @routes.get("", responses={200: JsonObject, 401: ErrorResponse})
    def read() -> Response:
        """The running profile as JSON: extends resolved, defaults filled in, secrets masked."""
        return with_etag(jsonify(context().loaded.masked_data()))

    @routes.get("/yaml", responses={200: None, 401: ErrorResponse})
    def read_yaml() -> Response:
        """The profile file itself, comments kept, every secret value masked."""
        return with_etag(Response(masked_file(context().loaded), mimetype="application/yaml"))

    @routes.put("", responses={200: Outcome, **WRITE_ERRORS})
    def replace(header: IfMatch) -> Response:
        """Replace the profile file with the YAML request body."""
        revision = if_match()
        text = request.get_data(as_text=True)
        if MASK in text:
            raise ApiError(422, "masked_secret", f"the text holds a masked secret ({MASK}); put the value or a "
                           "${env:}/${file:} reference")  # fmt: skip
        return outcome_response(context().change(ReplaceProfile(text, source="api", revision=revision)))

    @routes.patch("", responses={200: Outcome, **WRITE_ERRORS})
    def patch(header: IfMatch, body: JsonObject) -> Response:
        """Change the profile file by a JSON merge patch (RFC 7396): objects merge, null removes."""
        return outcome_response(context().change(EditProfile(PatchProfile(body.root), source="api",
                                                             revision=if_match())))  # fmt: skip

    @routes.get("/sections/<section>", responses={200: JsonObject, 401: ErrorResponse, 422: ErrorResponse})
    def read_section(path: SectionPath) -> Response:
        """One section: detector, tracker, distancing or anonymizer."""
        return with_etag(jsonify(context().loaded.masked_data()[path.section]))

    @routes.patch("/sections/<section>", responses={200: Outcome, **WRITE_ERRORS})
    def patch_section(path: SectionPath, header: IfMatch, body: JsonObject) -> Response:
        """Merge-patch one section of the profile file."""
        edit = PatchProfile(body.root, section=path.section)
        return outcome_response(context().change(EditProfile(edit, source="api", revision=if_match())))

    return routes


__all__ = ["SECTIONS", "JsonObject", "Outcome", "context", "if_match", "outcome_response",
           "profile_routes", "with_etag"]  # fmt: skip
