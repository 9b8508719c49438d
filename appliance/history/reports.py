"""Reports: the store's minutes added up per hour, day or week of the site's time zone.

Days and weeks begin at local midnight (weeks on Monday), so a day of a daylight-saving change
has 23 or 25 hours; hours are the absolute hours that begin at a local :00 (the repeated hour of
an autumn change appears twice, told apart by its UTC offset)."""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from appliance.history.rollup import MINUTE_S, MinuteRow
from appliance.history.store import Entity, HistoryReader

PERIODS = ("hour", "day", "week")
KINDS = ("camera", "zone", "line", "area")
SEVERITIES = ("low", "high", "critical")
MASK_COLUMNS = ("masked", "unmasked", "faces_too_small")  # people judged by the mask stage, once a minute each
COLUMNS_BY_KIND = {
    "camera": ("people_mean", "people_max", "in_violation_mean", "in_violation_max", "violation_person_s",
               "episodes", "episodes_low", "episodes_high", "episodes_critical", "observed_s", *MASK_COLUMNS),
    "zone": ("people_mean", "people_max", "in_violation_mean", "in_violation_max", "violation_person_s", "visits",
             "dwell_median_s", "dwell_p90_s", "loitering", "observed_s", *MASK_COLUMNS),
    "line": ("in", "out"),
    "area": ("people_mean", "people_max", "in_violation_mean", "in_violation_max", "violation_person_s",
             "threshold", "over_threshold_s", "alerts", "observed_s", *MASK_COLUMNS),
}  # fmt: skip
ReportRow = dict[str, Any]
FIRST_YEAR, LAST_YEAR = 1971, 2999  # times a report may ask for


@dataclass(frozen=True)
class Period:
    start: datetime  # aware, in the site's time zone
    end: datetime

    @property
    def bounds(self) -> tuple[float, float]:
        return self.start.timestamp(), self.end.timestamp()


def periods(start: datetime, end: datetime, every: str, zone: ZoneInfo) -> list[Period]:
    """The hours, days or weeks of `zone` that overlap [start, end), whole."""
    if every == "hour":
        first = start.astimezone(zone).replace(minute=0, second=0, microsecond=0).timestamp()
        count = max(0, -(-int(end.timestamp() - first) // 3600))
        edges = [datetime.fromtimestamp(first + 3600 * i, zone) for i in range(count + 1)]
    else:
        day = start.astimezone(zone).date()
        if every == "week":
            day -= timedelta(days=day.weekday())
        step = timedelta(days=7 if every == "week" else 1)
        edges = [_midnight(day, zone)]
        while edges[-1] < end:
            day += step
            edges.append(_midnight(day, zone))
    return [Period(a, b) for a, b in itertools.pairwise(edges)]


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def report(reader: HistoryReader, entity: Entity, spans: Sequence[Period]) -> list[ReportRow]:
    """One row per period: the entity's figures (None where nothing was recorded)."""
    if not spans:
        return []
    start, end = spans[0].bounds[0], spans[-1].bounds[1]
    minutes = reader.minutes(entity, start, end)
    visits = reader.visits(entity.name, start, end) if entity.kind == "zone" else []
    episodes = reader.episodes(entity.name, start, end) if entity.kind == "camera" else []
    rows = []
    for span in spans:
        lo, hi = span.bounds
        total = MinuteRow()
        for _, row in _between(minutes, lo // MINUTE_S, hi // MINUTE_S):
            total.merge(row)
        row_out: ReportRow = {"start": span.start.isoformat(), "end": span.end.isoformat()}
        figures = _figures(total, [d for _, d in _between(visits, lo, hi)], [e[1:] for e in _between(episodes, lo, hi)])
        row_out.update({column: figures[column] for column in COLUMNS_BY_KIND[entity.kind]})
        rows.append(row_out)
    return rows


def _between(rows: Sequence[tuple[Any, ...]], lo: float, hi: float) -> Sequence[tuple[Any, ...]]:
    keys = [row[0] for row in rows]
    return rows[bisect.bisect_left(keys, lo) : bisect.bisect_left(keys, hi)]


def _figures(total: MinuteRow, dwells: list[float], episodes: list[tuple[float, str | None]]) -> dict[str, Any]:
    sampled = total.samples > 0
    dwells.sort()
    return {
        "people_mean": round(total.people_sum / total.samples, 3) if sampled else None,
        "people_max": total.people_max if sampled else None,
        "in_violation_mean": round(total.violating_sum / total.samples, 3) if sampled else None,
        "in_violation_max": total.violating_max if sampled else None,
        "violation_person_s": round(total.violating_person_s, 1),
        "observed_s": round(total.seconds, 1),
        "threshold": total.threshold or None,
        "over_threshold_s": round(total.over_s, 1),
        "alerts": total.alerts,
        "in": total.crossed_in,
        "out": total.crossed_out,
        "visits": len(dwells),
        "dwell_median_s": round(statistics.median(dwells), 1) if dwells else None,
        "dwell_p90_s": round(_quantile(dwells, 0.9), 1) if dwells else None,
        "loitering": total.loitering,
        "masked": total.masked,
        "unmasked": total.unmasked,
        "faces_too_small": total.faces_too_small,
        "episodes": len(episodes),
        **{f"episodes_{s}": sum(1 for _, severity in episodes if severity == s) for s in SEVERITIES},
    }


def _quantile(ordered: list[float], q: float) -> float:
    """The `q` quantile by linear interpolation (numpy's default)."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def range_problem(start: datetime, end: datetime, max_days: int) -> str | None:
    """Why a request for [start, end) is refused, or None."""
    if end <= start:
        return f"the range ends ({end.isoformat()}) before it starts ({start.isoformat()})"
    days = (end.timestamp() - start.timestamp()) / 86400
    if days > max_days:
        return f"the range covers {days:.1f} days; at most {max_days} are allowed (storage.history.max_query_days)"
    return None


def parse_time(text: str, zone: ZoneInfo) -> datetime:
    """A date (local midnight) or an ISO 8601 date and time (local unless it has an offset)."""
    value = datetime.fromisoformat(text.strip())
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"{text.strip()!r} is not between {FIRST_YEAR} and {LAST_YEAR}")
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)
