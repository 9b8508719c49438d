"""Recent violation episodes, paged, and an export of the event log, both read from the local
event log (`<data_dir>/events/<camera>/<YYYY-MM-DD>.jsonl`, days in UTC)."""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flask import Response, jsonify, send_file
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field, model_validator

from appliance.api.auth import SECURITY
from appliance.api.errors import ErrorResponse
from appliance.api.routes.profile import context
from appliance.runtime.outputs.eventlog import event_log_folder

MAX_EXPORT_DAYS = 31
EPISODE_PREFIX = '{"type":"episode"'  # every record starts with its type: no need to parse the others


class EpisodeQuery(BaseModel):
    camera: str | None = Field(None, pattern="^[a-z0-9][a-z0-9_-]{0,62}$", description="Only this camera")
    page: int = Field(1, ge=1, le=100_000, description="Page number, newest episodes first")
    per_page: int = Field(50, ge=1, le=500)


class EpisodePage(BaseModel):
    items: list[dict[str, Any]]
    page: int
    per_page: int
    more: bool = Field(description="Whether a next page has episodes")


class ExportQuery(BaseModel):
    start: date = Field(alias="from", description="First day (UTC), YYYY-MM-DD")
    end: date = Field(alias="to", description="Last day (UTC), YYYY-MM-DD, at most 31 days after the first")

    @model_validator(mode="after")
    def _short_enough(self) -> ExportQuery:
        if not timedelta(0) <= self.end - self.start < timedelta(days=MAX_EXPORT_DAYS):
            raise ValueError(f"'to' must be on or after 'from', and at most {MAX_EXPORT_DAYS} days in all")
        return self


def _day_files(folder: Path, camera: str | None = None) -> list[Path]:
    """Every day file, newest day first."""
    pattern = f"{camera}/*.jsonl" if camera else "*/*.jsonl"
    return sorted(folder.glob(pattern), key=lambda p: (p.stem, p.parent.name), reverse=True)


def _episodes(files: list[Path]) -> Iterator[dict[str, Any]]:
    for path in files:
        with path.open(encoding="utf-8", errors="replace") as stream:
            lines = [line for line in stream if line.startswith(EPISODE_PREFIX)]
        for line in reversed(lines):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash is skipped, not an error for the reader


def events_routes() -> APIBlueprint:
    routes = APIBlueprint("events", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="events")],
                          abp_security=SECURITY)  # fmt: skip

    @routes.get("/episodes", responses={200: EpisodePage, 401: ErrorResponse, 422: ErrorResponse})
    def episodes(query: EpisodeQuery) -> Response:
        """Violation episodes that ended, from the event log: newest day first, and within a
        camera's day newest first."""
        skip, wanted = (query.page - 1) * query.per_page, query.per_page + 1
        found = []
        for index, episode in enumerate(_episodes(_day_files(event_log_folder(context().loaded), query.camera))):
            if index >= skip:
                found.append(episode)
            if len(found) == wanted:
                break
        body = EpisodePage(items=found[: query.per_page], page=query.page, per_page=query.per_page,
                           more=len(found) == wanted)  # fmt: skip
        return jsonify(body.model_dump())

    @routes.get("/events/export", responses={200: None, 401: ErrorResponse, 422: ErrorResponse})
    def export(query: ExportQuery) -> Response:
        """The event log of those days as a zip of `<camera>/<day>.jsonl` files."""
        days = {(query.start + timedelta(days=n)).isoformat() for n in range((query.end - query.start).days + 1)}
        archive = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - send_file closes it
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path in _day_files(event_log_folder(context().loaded)):
                if path.stem in days:
                    bundle.write(path, f"{path.parent.name}/{path.name}")
        archive.seek(0)
        name = f"events-{query.start.isoformat()}-{query.end.isoformat()}.zip"
        return send_file(archive, mimetype="application/zip", as_attachment=True, download_name=name)

    return routes
