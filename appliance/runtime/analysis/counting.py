"""Line counts in local time: in and out today and this hour, per line, and an area's occupancy
estimated from its entrances (in minus out since the daily reset, never below zero). Pure: the
crossings' times in, counts out; the site's time zone decides where days and hours begin."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from appliance.runtime.types import LineCounts


def local(timestamp: float, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, zone)


def last_daily(timestamp: float, at: dt.time, zone: ZoneInfo) -> float:
    """The latest moment at or before `timestamp` when the local clock read `at` (on a day the
    clock skips `at`, what `at` is in the offset before the skip: an hour later)."""
    day = local(timestamp, zone).date()
    for date in (day, day - dt.timedelta(days=1)):
        moment = dt.datetime.combine(date, at, tzinfo=zone).timestamp()
        if moment <= timestamp:
            return moment
    raise AssertionError("a day has a moment at any time of day")


class LineTotals:
    """One line's counts since local midnight and in the current local hour."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._day, self._hour = "", ""
        self._today = {"in": 0, "out": 0}
        self._this_hour = {"in": 0, "out": 0}

    def add(self, direction: Literal["in", "out"], timestamp: float) -> LineCounts:
        self._roll(timestamp)
        self._today[direction] += 1
        self._this_hour[direction] += 1
        return self.counts()

    def counts(self) -> LineCounts:
        today, hour = self._today, self._this_hour
        return LineCounts(self._day, self._hour, today["in"], today["out"], hour["in"], hour["out"])

    def _roll(self, timestamp: float) -> None:
        now = local(timestamp, self.zone)
        day, hour = now.date().isoformat(), now.replace(minute=0, second=0, microsecond=0).isoformat()
        if day != self._day:
            self._day, self._today = day, {"in": 0, "out": 0}
        if hour != self._hour:
            self._hour, self._this_hour = hour, {"in": 0, "out": 0}


class EntranceEstimate:
    """People inside a space, from those who came in and went out through its entrances."""

    def __init__(self, reset_at: str, zone: ZoneInfo) -> None:
        hours, minutes = (int(part) for part in reset_at.split(":"))
        self.reset_at, self.zone = dt.time(hours, minutes), zone
        self.people = 0
        self._since = float("-inf")

    def add(self, direction: Literal["in", "out"], timestamp: float) -> int:
        self.at(timestamp)
        self.people = self.people + 1 if direction == "in" else max(0, self.people - 1)
        return self.people

    def at(self, timestamp: float) -> int:
        """The estimate at `timestamp`: zero again once the reset time has passed."""
        reset = last_daily(timestamp, self.reset_at, self.zone)
        if reset > self._since or timestamp < self._since:
            self.people, self._since = 0, reset
        return self.people
