"""The daily and weekly report messages: when each is due (a local time of the device's time
zone), what it says (history's figures for the day or week before) and the day's charts.

A report missed while the appliance was off is sent once when it starts again (the latest one
only); a device's first start sends none, so a new device does not report an empty past."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from appliance.config.model import Profile, ReportScheduleConfig, WeeklyReportConfig
from appliance.history.reports import Period, report
from appliance.history.store import Entity, HistoryReader, HistoryUnavailableError, store_path
from appliance.runtime.outputs.channels.base import Attachment, Message
from appliance.runtime.outputs.notifications.compose import report_message

log = logging.getLogger(__name__)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CHARTS = 4


@dataclass(frozen=True)
class DueReport:
    which: str  # daily or weekly
    first_day: date
    days: int

    @property
    def key(self) -> str:
        return self.first_day.isoformat()


def latest_due(which: str, schedule: ReportScheduleConfig, now: datetime) -> DueReport:
    """The newest report whose sending time has passed at `now` (aware, local)."""
    at = time.fromisoformat(schedule.at)
    sending_day = now.date() if now.time() >= at else now.date() - timedelta(days=1)
    if which == "daily":
        return DueReport(which, sending_day - timedelta(days=1), 1)
    assert isinstance(schedule, WeeklyReportConfig)
    back = (sending_day.weekday() - WEEKDAYS.index(schedule.day)) % 7
    sending_day -= timedelta(days=back)
    return DueReport(which, sending_day - timedelta(days=7), 7)


class ReportSchedule:
    """Which reports were sent, kept in a small file beside the channels' queues."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.sent: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.sent = {}

    def due(self, profile: Profile, now: float) -> list[DueReport]:
        local = datetime.fromtimestamp(now, ZoneInfo(profile.device.timezone))
        found = []
        for which, schedule in (("daily", profile.notifications.daily_report),
                                ("weekly", profile.notifications.weekly_report)):  # fmt: skip
            if not (schedule.enabled and schedule.channels):
                continue
            latest = latest_due(which, schedule, local)
            if which not in self.sent:  # the first start: nothing is owed yet
                self.mark(latest)
            elif self.sent[which] < latest.key:
                found.append(latest)
        return found

    def mark(self, due: DueReport) -> None:
        self.sent[due.which] = due.key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.sent))
        partial.replace(self.path)


def build_report(profile: Profile, due: DueReport, now: float) -> Message:
    zone = ZoneInfo(profile.device.timezone)
    start = datetime(due.first_day.year, due.first_day.month, due.first_day.day, tzinfo=zone)
    end_day = due.first_day + timedelta(days=due.days)
    period = Period(start, datetime(end_day.year, end_day.month, end_day.day, tzinfo=zone))
    title = (f"Daily report for {due.first_day:%A %d %B %Y}" if due.which == "daily"
             else f"Weekly report for {due.first_day:%d %b} to {end_day - timedelta(days=1):%d %b %Y}")  # fmt: skip
    body: dict[str, object] = {
        "type": "report",
        "period": due.which,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
    }
    try:
        reader = HistoryReader(store_path(Path(profile.storage.data_dir)))
        entities = reader.entities()
        figures: dict[str, list[tuple[str, dict[str, object]]]] = {}
        for entity in entities:
            figures.setdefault(entity.kind, []).append((entity.name, report(reader, entity, [period])[0]))
        body["figures"] = {kind: dict(rows) for kind, rows in figures.items()}
        message = report_message(profile, title, figures, body, now)
        return _with_charts(message, reader, entities, due, zone)
    except HistoryUnavailableError as error:
        log.warning("the %s report has no figures: %s", due.which, error)
        return report_message(profile, f"{title}: no figures ({error})", {}, body, now)


def _with_charts(message: Message, reader: HistoryReader, entities: list[Entity], due: DueReport,
                 zone: ZoneInfo) -> Message:  # fmt: skip
    """The day's charts of the areas (else the cameras), for a daily report."""
    if due.which != "daily":
        return message
    from appliance.history.charts import day_chart  # matplotlib: loaded when a report is made, not by every runtime

    areas = [e for e in entities if e.kind == "area"]
    for entity in (areas or [e for e in entities if e.kind == "camera"])[:MAX_CHARTS]:
        png = day_chart(reader, entity, due.first_day, zone)
        message = message.with_attachment(Attachment(f"{entity.kind}-{entity.name}-{due.key}.png", "image/png", png))
    return message
