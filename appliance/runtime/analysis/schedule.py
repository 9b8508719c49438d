"""Occupancy thresholds by weekday and time of day, in the site's time zone: the first period of
`occupancy_schedule` that covers a moment gives its threshold, `occupancy_threshold` otherwise.
A period starts on one of its days at `start` local time and runs to `end`, the next day when
`end` is not later than `start`; on a day the clock changes, it lasts an hour more or less."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from appliance.config.model import AreaConfig, OccupancyRuleConfig

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def threshold_at(area: AreaConfig, timestamp: float, zone: ZoneInfo) -> int | None:
    """The area's occupancy threshold at `timestamp` (Unix time)."""
    if not area.occupancy_schedule:
        return area.occupancy_threshold
    today = dt.datetime.fromtimestamp(timestamp, zone).date()
    for rule in area.occupancy_schedule:
        if any(_covers(rule, day, timestamp, zone) for day in (today, today - dt.timedelta(days=1))):
            return rule.threshold
    return area.occupancy_threshold


def _covers(rule: OccupancyRuleConfig, day: dt.date, timestamp: float, zone: ZoneInfo) -> bool:
    """Whether the period of `rule` that starts on `day` covers `timestamp`."""
    if WEEKDAYS[day.weekday()] not in rule.days:
        return False
    start, end = _time(rule.start), _time(rule.end)
    end_day = day if end > start else day + dt.timedelta(days=1)
    begins = dt.datetime.combine(day, start, tzinfo=zone).timestamp()
    ends = dt.datetime.combine(end_day, end, tzinfo=zone).timestamp()
    return begins <= timestamp < ends


def _time(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))
