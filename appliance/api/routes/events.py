"""Recent violation episodes, paged, and an export of the event log, both read from the local
event log (`<data_dir>/events/<camera>/<YYYY-MM-DD>.jsonl`, days in UTC); the export may carry
the history's reports of the same days too. It is streamed, and refused beforehand when the
files it would read are over MAX_EXPORT_BYTES."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field, model_validator

from appliance.api.auth import SECURITY
from appliance.api.errors import ApiError, ErrorResponse
from appliance.api.routes.cameras import IDENTIFIER
from appliance.api.routes.profile import context
from appliance.history.reports import COLUMNS_BY_KIND, periods, report
from appliance.history.store import HistoryReader, HistoryUnavailableError, store_path
from appliance.runtime.outputs.eventlog import DEVICE_STREAM, event_log_folder

MAX_EXPORT_DAYS = 31
MAX_EXPORT_BYTES = 512 * 1024 * 1024  # of the event log read for one export
EventType = Literal["detections", "episode", "area", "zone", "zone_visit", "crossing", "alert", "config", "run"]
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
    camera: list[Annotated[str, Field(pattern=IDENTIFIER)]] | None = Field(
        None, max_length=64, description="Only these cameras' files (repeat the parameter); the device's file always"
    )
    type: list[EventType] | None = Field(None, max_length=32, description="Only these event types")
    reports: bool = Field(False, description="Add the history's daily and hourly reports (CSV) of those days")

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
        """The event log of those days as a streamed zip of `<camera>/<day>.jsonl` files (only the
        chosen cameras and event types), and with `reports`, `reports/<kind>-<name>-<day|hour>.csv`
        for every camera, zone, line and area the history has of them."""
        days = {(query.start + timedelta(days=n)).isoformat() for n in range((query.end - query.start).days + 1)}
        chosen = set(query.camera or ()) | {DEVICE_STREAM}
        files = [p for p in _day_files(event_log_folder(context().loaded))
                 if p.stem in days and (query.camera is None or p.parent.name in chosen)]  # fmt: skip
        size = sum(p.stat().st_size for p in files)
        if size > MAX_EXPORT_BYTES:
            message = (f"the export would read {size / 1e6:.0f} MB of the event log, over the "
                       f"{MAX_EXPORT_BYTES / 1e6:.0f} MB an export may; choose fewer days or cameras")  # fmt: skip
            raise ApiError(422, "export_too_large", message)
        entries = [(f"{p.parent.name}/{p.name}", _lines(p, query.type)) for p in sorted(files)]
        if query.reports:
            entries += _report_entries(query, chosen)
        name = f"events-{query.start.isoformat()}-{query.end.isoformat()}.zip"
        return Response(stream_zip(entries), mimetype="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip

    return routes


def _lines(path: Path, types: Sequence[str] | None) -> Callable[[], Iterator[bytes]]:
    prefixes = tuple(f'{{"type":"{t}"'.encode() for t in types) if types else None

    def read() -> Iterator[bytes]:
        with path.open("rb") as stream:
            for line in stream:
                if prefixes is None or line.startswith(prefixes):
                    yield line

    return read


def _report_entries(query: ExportQuery, cameras: set[str]) -> list[tuple[str, Callable[[], Iterator[bytes]]]]:
    """A daily and an hourly CSV of every chosen entity the history has, over the export's days
    (local days of device.timezone from `from` to the day after `to`)."""
    loaded = context().loaded
    zone = ZoneInfo(loaded.profile.device.timezone)
    start = datetime(query.start.year, query.start.month, query.start.day, tzinfo=zone)
    after = query.end + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=zone)
    try:
        reader = HistoryReader(store_path(Path(loaded.profile.storage.data_dir)))
    except HistoryUnavailableError as error:
        raise ApiError(503, "history_unavailable", str(error)) from None
    entries = []
    try:
        for entity in reader.entities():
            camera = entity.name.split("/")[0]
            if query.camera is not None and entity.kind != "area" and camera not in cameras:
                continue
            for every in ("day", "hour"):
                rows = report(reader, entity, periods(start, end, every, zone))
                entries.append((f"reports/{entity.kind}-{entity.name.replace('/', '-')}-{every}.csv",
                                _csv(["start", "end", *COLUMNS_BY_KIND[entity.kind]], rows)))  # fmt: skip
    except HistoryUnavailableError as error:
        raise ApiError(503, "history_unavailable", str(error)) from None
    finally:
        reader.close()
    return entries


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> Callable[[], Iterator[bytes]]:
    def write() -> Iterator[bytes]:
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        yield text.getvalue().encode()

    return write


class _Sink:
    """Where zipfile writes: collected until the response takes it (not seekable, so zipfile
    writes each member's sizes after its data)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        chunks, self.chunks = self.chunks, []
        yield from chunks


def stream_zip(entries: list[tuple[str, Callable[[], Iterator[bytes]]]]) -> Iterator[bytes]:
    """A zip archive of `entries` (name, a function giving the member's bytes), made as it is sent."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in entries:
            with bundle.open(name, "w") as member:
                for chunk in content():
                    member.write(chunk)
                    yield from sink.drain()
            yield from sink.drain()
    yield from sink.drain()
