"""The words of the messages: an alert says what, where (area, cameras, zones), since when and
the current figures; a report gives each area's, camera's, zone's and line's headline figures.
Times are in the device's time zone. Pure functions of events, the profile and history rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance.config.model import AreaConfig, Profile
from appliance.runtime.events import MASK_MINUTE_S, AreaAlert
from appliance.runtime.outputs.channels.base import Message, message_id
from appliance.runtime.serialize import to_json

ALERT_TITLES = {
    "occupancy": "Occupancy over threshold",
    "violation": "Distancing violations",
    "loitering": "Loitering",
    "unmasked": "People without masks",
}


def alert_message(alert: AreaAlert, profile: Profile, now: float) -> Message:
    area = next(a for a in profile.areas if a.id == alert.area_id)
    zone = ZoneInfo(profile.device.timezone)
    title = ALERT_TITLES[alert.kind]
    cameras = ", ".join(f"{profile.camera(c).name or c} ({c})" for c in area.cameras)
    lines = [
        f"{title} in {area.name or area.id} (area {area.id}).",
        f"When: {_clock(alert.timestamp, zone)}, since {_clock(alert.timestamp - _rule_delay(area, alert), zone)}",
        f"What: {alert.detail}",
        f"Now: {alert.people} people, {alert.people_in_violation} in violation.",
    ]
    if cameras:
        lines.append(f"Cameras: {cameras}")
    if area.zones:
        lines.append(f"Zones: {', '.join(area.zones)}")
    subject = f"[{profile.device.display_name}] {title}: {area.name or area.id}"
    return _message("alert", subject, lines, profile, to_json(alert), now)


def test_message(profile: Profile, channel_id: str, now: float) -> Message:
    lines = [f"A test message from {profile.device.display_name} to channel {channel_id}: this channel works."]
    subject = f"[{profile.device.display_name}] Test message"
    return _message("test", subject, lines, profile, {"type": "test", "channel": channel_id}, now)


def report_message(
    profile: Profile, title: str, figures: dict[str, list[tuple[str, dict[str, Any]]]], body: dict[str, Any],
    now: float,
) -> Message:  # fmt: skip
    """A report: `figures` maps a kind (area, camera, zone, line) to (entity name, report row)."""
    lines = [f"{title} ({profile.device.timezone}).", ""]
    for kind, heading in (("area", "Areas"), ("camera", "Cameras"), ("zone", "Zones"), ("line", "Lines")):
        rows = figures.get(kind, [])
        if rows:
            lines.append(heading)
            lines += [f"  {_label(profile, kind, name)}: {_headline(kind, row)}" for name, row in rows]
            lines.append("")
    if len(lines) == 2:
        lines.append("Nothing was recorded in this period.")
    subject = f"[{profile.device.display_name}] {title}"
    return _message("report", subject, lines, profile, body, now)


def _message(kind: str, subject: str, lines: list[str], profile: Profile, body: dict[str, Any], now: float) -> Message:
    identifier = message_id()
    footer = f"— {profile.device.display_name} ({profile.device.id}) · ref {identifier[:12]}"
    return Message(identifier, kind, subject, "\n".join([*lines, "", footer]), body, now)


def _rule_delay(area: AreaConfig, alert: AreaAlert) -> float:
    """How long the rule had held when it fired."""
    if alert.kind == "occupancy":
        return area.occupancy_alert.min_duration_s
    if alert.kind == "violation":
        return area.violation_alert.min_duration_s
    if alert.kind == "unmasked":
        return MASK_MINUTE_S
    return 0.0


def _clock(t: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _label(profile: Profile, kind: str, name: str) -> str:
    if kind == "camera":
        camera = next((c for c in profile.cameras if c.id == name), None)
        return f"{camera.name} ({name})" if camera is not None and camera.name else name
    if kind == "area":
        area = next((a for a in profile.areas if a.id == name), None)
        return f"{area.name} ({name})" if area is not None and area.name else name
    return name


def _headline(kind: str, row: dict[str, Any]) -> str:
    if kind == "line":
        return f"{row['in']} in, {row['out']} out"
    if row.get("people_max") is None:
        return "nothing recorded"
    parts = [f"peak {row['people_max']} people, mean {row['people_mean']:.1f}"]
    if kind == "area":
        if row["threshold"] is not None:
            parts.append(f"over the threshold of {row['threshold']} for {_duration(row['over_threshold_s'])}")
        parts.append(f"{row['alerts']} alert(s)")
    if kind == "camera":
        severe = f"{row['episodes_high']} high, {row['episodes_critical']} critical"
        parts.append(f"{row['episodes']} violation episode(s) ({severe})")
    if kind == "zone":
        parts.append(f"{row['visits']} visit(s)")
        if row["dwell_median_s"] is not None:
            parts.append(f"median stay {_duration(row['dwell_median_s'])}")
        parts.append(f"{row['loitering']} loitering")
    parts.append(f"{_duration(row['violation_person_s'])} person-time in violation")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
