"""Reports, a day's chart and heatmaps from the history store (appliance/history), for every
role. Each request names one camera, zone (CAMERA/ZONE), line (CAMERA/LINE) or area, and a time
range no longer than storage.history.max_query_days (422 with the reason beyond)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field, model_validator

from appliance.api.auth import SECURITY
from appliance.api.errors import ApiError, ErrorResponse, Responses
from appliance.api.routes.profile import context
from appliance.geometry import fit_homography
from appliance.history.reports import (
    COLUMNS_BY_KIND,
    FIRST_YEAR,
    KINDS,
    LAST_YEAR,
    parse_time,
    periods,
    range_problem,
    report,
)
from appliance.history.store import Entity, HistoryReader, HistoryUnavailableError, store_path

ID = "[a-z0-9][a-z0-9_-]{0,62}"
ERRORS: Responses = {401: ErrorResponse, 404: ErrorResponse, 422: ErrorResponse, 503: ErrorResponse}


class EntityQuery(BaseModel):
    camera: str | None = Field(None, pattern=f"^{ID}$", description="A camera id")
    zone: str | None = Field(None, pattern=f"^{ID}/{ID}$", description="CAMERA/ZONE")
    line: str | None = Field(None, pattern=f"^{ID}/{ID}$", description="CAMERA/LINE")
    area: str | None = Field(None, pattern=f"^{ID}$", description="An area id")

    @model_validator(mode="after")
    def _one_entity(self) -> EntityQuery:
        if sum(getattr(self, kind) is not None for kind in KINDS) != 1:
            raise ValueError("name exactly one of camera, zone, line and area")
        return self

    def entity(self) -> Entity:
        kind = next(kind for kind in KINDS if getattr(self, kind) is not None)
        return Entity(kind, getattr(self, kind))


class RangeQuery(BaseModel):
    start: str = Field(alias="from", max_length=40, description="Local date or ISO 8601 time (device.timezone)")
    end: str = Field(alias="to", max_length=40, description="Local date or ISO 8601 time, not included")


class ReportQuery(EntityQuery, RangeQuery):
    every: Literal["hour", "day", "week"] = "hour"
    format: Literal["json", "csv"] = "json"
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(500, ge=1, le=1000)


class ChartQuery(EntityQuery):
    day: date = Field(ge=date(FIRST_YEAR, 1, 1), le=date(LAST_YEAR, 12, 31), description="The local date, YYYY-MM-DD")


class HeatmapQuery(RangeQuery):
    camera: str = Field(pattern=f"^{ID}$", description="A camera id")
    violations: bool = Field(False, description="Only people in violation")
    floor: bool = Field(False, description="On the floor in cm (a calibrated camera)")
    snapshot: bool = Field(True, description="Over the camera's anonymized snapshot, when it is running")


class ReportPage(BaseModel):
    kind: str
    name: str
    every: str
    timezone: str
    columns: list[str]
    rows: list[dict[str, Any]]
    page: int
    per_page: int
    more: bool


def reports_routes() -> APIBlueprint:
    routes = APIBlueprint("reports", __name__, url_prefix="/api/v1/reports", abp_tags=[Tag(name="reports")],
                          abp_security=SECURITY)  # fmt: skip

    @routes.get("", responses={200: ReportPage, **ERRORS})
    def reports(query: ReportQuery) -> Response:
        """One row per hour, day or week of the site's time zone: people, people in violation,
        episodes, crossings, dwell, time over the threshold (the columns depend on the kind)."""
        zone = _zone()
        start, end = _range(query, zone)
        entity = query.entity()
        spans = periods(start, end, query.every, zone)
        first = (query.page - 1) * query.per_page
        with _reader() as reader:
            _known(reader, entity)
            rows = report(reader, entity, spans[first : first + query.per_page])
        columns = ["start", "end", *COLUMNS_BY_KIND[entity.kind]]
        if query.format == "csv":
            text = io.StringIO()
            writer = csv.DictWriter(text, columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            name = f"{entity.kind}-{entity.name.replace('/', '-')}-{query.every}.csv"
            return Response(text.getvalue(), mimetype="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
        page = ReportPage(kind=entity.kind, name=entity.name, every=query.every, timezone=zone.key, columns=columns,
                          rows=rows, page=query.page, per_page=query.per_page,
                          more=first + query.per_page < len(spans))  # fmt: skip
        return jsonify(page.model_dump())

    @routes.get("/chart.png", responses={200: None, **ERRORS})
    def chart(query: ChartQuery) -> Response:
        """A day of one camera, zone, line or area as PNG."""
        from appliance.history.charts import day_chart  # matplotlib: loaded when first asked for

        with _reader() as reader:
            entity = query.entity()
            _known(reader, entity)
            return _png(day_chart(reader, entity, query.day, _zone()))

    @routes.get("/heatmap.png", responses={200: None, **ERRORS})
    def heat(query: HeatmapQuery) -> Response:
        """Where a camera's people stood (or stood too close) as PNG: in the image over its
        anonymized snapshot, or on the floor of a calibrated camera."""
        from appliance.history.charts import heatmap

        start, end = _range(query, _zone())
        floor = _floor(query.camera) if query.floor else None
        background = _snapshot(query.camera) if query.snapshot and not query.floor else None
        with _reader() as reader:
            _known(reader, Entity("camera", query.camera))
            return _png(heatmap(reader, query.camera, start, end, violations=query.violations, background=background,
                                floor=floor))  # fmt: skip

    return routes


@contextmanager
def _reader() -> Iterator[HistoryReader]:
    try:
        reader = HistoryReader(store_path(Path(context().loaded.profile.storage.data_dir)))
    except HistoryUnavailableError as error:
        raise ApiError(503, "history_unavailable", str(error)) from None
    try:
        yield reader
    except HistoryUnavailableError as error:
        raise ApiError(503, "history_unavailable", str(error)) from None
    finally:
        reader.close()


def _zone() -> ZoneInfo:
    return ZoneInfo(context().loaded.profile.device.timezone)


def _range(query: RangeQuery, zone: ZoneInfo) -> tuple[datetime, datetime]:
    try:
        start, end = parse_time(query.start, zone), parse_time(query.end, zone)
    except ValueError as error:
        raise ApiError(422, "bad_time", f"'from' and 'to' must be dates or ISO 8601 times: {error}") from None
    if problem := range_problem(start, end, context().loaded.profile.storage.history.max_query_days):
        raise ApiError(422, "range_refused", problem)
    return start, end


def _known(reader: HistoryReader, entity: Entity) -> None:
    if entity not in reader.entities():
        raise ApiError(404, "not_in_history", f"the history has no {entity.kind} '{entity.name}'")


def _floor(camera_id: str) -> Any:
    camera = next((c for c in context().loaded.profile.cameras if c.id == camera_id), None)
    points = camera.distance.calibration if camera else None
    if not points:
        raise ApiError(422, "not_calibrated", f"camera '{camera_id}' has no calibration: no floor to draw on")
    return fit_homography([p.image for p in points], [p.floor for p in points])


def _snapshot(camera_id: str) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
    """The camera's anonymized snapshot as RGB, or None when it cannot give one now."""
    try:
        jpeg = context().snapshots.take(camera_id).jpeg
    except ApiError:
        return None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.ascontiguousarray(image[:, :, ::-1])


def _png(data: bytes) -> Response:
    return Response(data, mimetype="image/png", headers={"Cache-Control": "no-store"})
