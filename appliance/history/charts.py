"""Pictures of the history for people who would rather look than read: a day's chart of one
camera, zone, line or area, and a heatmap of where people stood (or stood too close), in the
image over the camera's anonymized snapshot or on the floor of a calibrated camera. PNG bytes."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # no display on the device

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from appliance.geometry import Homography
from appliance.history.reports import periods, report
from appliance.history.rollup import HEAT_CELL_BASE, HEAT_CELL_PX, MINUTE_S
from appliance.history.store import Entity, HistoryReader

FLOOR_CELL_CM = 50.0
CHART_SIZE_IN, DPI = (10, 4.5), 100
SPARSE_MINUTES = 120
SPREAD = 4  # floor heatmaps: samples per image cell side


def day_chart(reader: HistoryReader, entity: Entity, day: date, zone: ZoneInfo) -> bytes:
    """The entity's `day` (local): people and people in violation per minute (and the occupancy
    threshold and the time over it, for an area); crossings in and out per hour, for a line."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), start.timetz())
    figure, axes = plt.subplots(figsize=CHART_SIZE_IN, dpi=DPI)
    try:
        if entity.kind == "line":
            _crossings(axes, report(reader, entity, periods(start, end, "hour", zone)), zone)
        else:
            _people(axes, reader, entity, start, end, zone)
        axes.set_xlim(start, end)  # type: ignore[arg-type]  # matplotlib converts datetimes
        axes.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=zone))  # type: ignore[no-untyped-call]
        axes.grid(alpha=0.3)
        axes.set_title(f"{entity.kind} {entity.name}, {day.isoformat()} ({zone.key})")
        figure.autofmt_xdate()
        return _png(figure)
    finally:
        plt.close(figure)


def _people(axes: Any, reader: HistoryReader, entity: Entity, start: datetime, end: datetime, zone: ZoneInfo) -> None:
    minutes = reader.minutes(entity, start.timestamp(), end.timestamp())
    rows = [(datetime.fromtimestamp(m * MINUTE_S, zone), r) for m, r in minutes if r.samples]
    times = [t for t, _ in rows]
    marker = "o" if len(rows) < SPARSE_MINUTES else None  # a few minutes of a day: points, not invisible lines
    axes.plot(times, [r.people_sum / r.samples for _, r in rows], color="tab:blue", marker=marker, markersize=3,
              label="people (mean per minute)")  # fmt: skip
    axes.plot(times, [r.violating_sum / r.samples for _, r in rows], color="tab:red", marker=marker, markersize=3,
              label="people in violation (mean per minute)")  # fmt: skip
    if entity.kind == "area" and any(r.threshold for _, r in rows):
        axes.step(times, [r.threshold or np.nan for _, r in rows], where="post", color="black", linestyle="--",
                  marker="_" if marker else None, markersize=12, label="occupancy threshold")  # fmt: skip
        for t, r in rows:  # each minute with time over, drawn at least a pixel wide
            if r.over_s > 0:
                axes.axvspan(t, t + timedelta(minutes=1), color="tab:orange", alpha=0.3, linewidth=1)
    axes.set_ylabel("people")
    axes.set_ylim(bottom=0)
    if not rows:
        axes.text(0.5, 0.5, "nothing recorded", transform=axes.transAxes, ha="center", va="center", color="gray")
    else:
        axes.legend(loc="upper left")


def _crossings(axes: Any, rows: list[dict[str, Any]], zone: ZoneInfo) -> None:
    starts = [datetime.fromisoformat(row["start"]).astimezone(zone) for row in rows]
    width = timedelta(minutes=25)
    axes.bar([s + timedelta(minutes=5) for s in starts], [row["in"] for row in rows], width=width, align="edge",
             color="tab:green", label="in")  # fmt: skip
    axes.bar([s + timedelta(minutes=30) for s in starts], [row["out"] for row in rows], width=width, align="edge",
             color="tab:purple", label="out")  # fmt: skip
    axes.set_ylabel("crossings per hour")
    axes.legend(loc="upper left")


def heatmap(
    reader: HistoryReader,
    camera: str,
    start: datetime,
    end: datetime,
    *,
    violations: bool = False,
    background: npt.NDArray[np.uint8] | None = None,
    floor: Homography | None = None,
) -> bytes:
    """Where the camera's people stood from `start` to `end` (people in violation only, when
    `violations`): over `background` (an RGB image, the anonymized snapshot) in the image, or on
    the floor in cm through `floor`."""
    cells = reader.heat(camera, start.timestamp(), end.timestamp())
    counts = np.array(
        [(cell, violating if violations else people) for cell, people, violating in cells], dtype=np.int64
    )
    counts = counts[counts[:, 1] > 0] if len(counts) else np.zeros((0, 2), dtype=np.int64)
    centres = (
        np.stack([counts[:, 0] % HEAT_CELL_BASE + 0.5, counts[:, 0] // HEAT_CELL_BASE + 0.5], axis=1) * HEAT_CELL_PX
    )
    figure, axes = plt.subplots(figsize=(8, 6), dpi=DPI)
    try:
        what = "people in violation" if violations else "people"
        if floor is None:
            _image_heat(axes, centres, counts[:, 1], background)
        else:
            _floor_heat(axes, floor, centres, counts[:, 1])
        axes.set_title(f"camera {camera}: where {what} stood\n{start.isoformat()} to {end.isoformat()}")
        if not len(counts):
            axes.text(0.5, 0.5, "nothing recorded", transform=axes.transAxes, ha="center", va="center", color="gray")
        return _png(figure)
    finally:
        plt.close(figure)


def _image_heat(axes: Any, centres: npt.NDArray[np.float64], weights: npt.NDArray[np.int64],
                background: npt.NDArray[np.uint8] | None) -> None:  # fmt: skip
    if background is not None:
        height, width = background.shape[:2]
        axes.imshow(background, extent=(0, width, height, 0))
    else:
        width = int(max(centres[:, 0].max() + HEAT_CELL_PX, 640)) if len(centres) else 640
        height = int(max(centres[:, 1].max() + HEAT_CELL_PX, 480)) if len(centres) else 480
    columns, rows = -(-width // HEAT_CELL_PX), -(-height // HEAT_CELL_PX)
    grid = np.zeros((rows, columns))
    for (x, y), weight in zip(centres, weights, strict=True):
        row, column = int(y // HEAT_CELL_PX), int(x // HEAT_CELL_PX)
        if row < rows and column < columns:
            grid[row, column] += weight
    shown = np.ma.masked_equal(grid, 0)
    image = axes.imshow(shown, extent=(0, columns * HEAT_CELL_PX, rows * HEAT_CELL_PX, 0), cmap="inferno",
                        alpha=0.6 if background is not None else 1.0, interpolation="nearest")  # fmt: skip
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.set_xlabel("image x (px)")
    axes.set_ylabel("image y (px)")
    axes.figure.colorbar(image, ax=axes, label="person-samples")


def _floor_heat(axes: Any, floor: Homography, centres: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]) -> None:
    """Each image cell spread over its floor footprint (sampled 4 x 4), so that far cells, large
    on the floor, do not show as isolated dots."""
    offsets = (np.arange(SPREAD) + 0.5) / SPREAD * HEAT_CELL_PX - HEAT_CELL_PX / 2
    grid = np.stack(np.meshgrid(offsets, offsets), axis=-1).reshape(-1, 2)
    samples = (centres[:, None, :] + grid[None, :, :]).reshape(-1, 2)
    points = floor.to_floor(samples) if len(samples) else samples
    weights = np.repeat(counts / len(grid), len(grid))
    finite = np.isfinite(points).all(axis=1) if len(points) else np.zeros(0, dtype=bool)
    points, weights = points[finite], weights[finite]
    if len(points):
        low, high = points.min(axis=0), points.max(axis=0)
        bins = [np.arange(low[i], high[i] + 2 * FLOOR_CELL_CM, FLOOR_CELL_CM) for i in range(2)]
        grid, xs, ys = np.histogram2d(points[:, 0], points[:, 1], bins=bins, weights=weights)
        image = axes.pcolormesh(xs, ys, np.ma.masked_equal(grid.T, 0), cmap="inferno")
        axes.figure.colorbar(image, ax=axes, label="person-samples")
        axes.set_aspect("equal")
    axes.set_xlabel("floor x (cm)")
    axes.set_ylabel("floor y (cm)")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
