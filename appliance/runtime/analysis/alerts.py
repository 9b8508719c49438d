"""Area alerts, each with a minimum duration, a hysteresis and a cooldown, so that a count
hovering at a limit does not flood:

- occupancy: the area stays over its threshold for `occupancy_alert.min_duration_s`; a time over
  ends only when the count falls `hysteresis` people below the threshold (a person missed for a
  frame does not restart it), and it alerts again only after falling that far, never within
  `cooldown_s`;
- distancing (`violation_alert`): at least `min_people` in violation at once for
  `min_duration_s`, gaps shorter than `clear_after_s` neither ending nor restarting it, at most
  once per `cooldown_s`;
- loitering: someone stays in one of its zones longer than the zone's `loitering_s` (once per
  visit), at most once per `loitering_alert.cooldown_s`;
- unmasked (`mask_alert`): in a minute of the mask stage, at least `min_people` got a verdict and
  more than `max_unmasked_share` of them were unmasked, at most once per `cooldown_s`.

Pure: counts and event times in, alerts out."""

from __future__ import annotations

from appliance.config.model import AreaConfig
from appliance.runtime.events import AlertKind, AreaAlert, AreaUpdate, MaskCounts, ZoneVisitEvent


class AreaAlerts:
    """The alert state of one area between its updates."""

    def __init__(self, area: AreaConfig) -> None:
        self.area = area
        self._over_since: float | None = None
        self._occupancy_armed = True
        self._last_occupancy_alert: float | None = None
        self._violating_since: float | None = None
        self._last_violating = float("-inf")
        self._last_violation_alert: float | None = None
        self._last_loitering_alert: float | None = None
        self._last_mask_alert: float | None = None
        self._last_time = float("-inf")

    def update(self, status: AreaUpdate) -> list[AreaAlert]:
        now = status.timestamp
        if now < self._last_time:  # a recording started over: its clock went back
            self._over_since = self._last_occupancy_alert = None
            self._violating_since = self._last_violation_alert = None
            self._last_violating = float("-inf")
            self._occupancy_armed = True
        self._last_time = now
        alerts = []
        if self._occupancy_rule_met(status):
            detail = (
                f"{status.occupancy} people, more than the threshold of {status.threshold} "
                f"for {self.area.occupancy_alert.min_duration_s:g} s or more"
            )
            alerts.append(self._alert("occupancy", status, detail))
            self._last_occupancy_alert, self._occupancy_armed = now, False
        if self._violation_rule_met(status):
            lasted = self.area.violation_alert.min_duration_s
            detail = f"{status.people_in_violation} people in violation for {lasted:g} s or more"
            alerts.append(self._alert("violation", status, detail))
            self._last_violation_alert = now
        return alerts

    def loitering(self, event: ZoneVisitEvent, status: AreaUpdate | None) -> list[AreaAlert]:
        """An alert for someone loitering in one of the area's zones, at most once per cooldown."""
        rule, now = self.area.loitering_alert, event.timestamp
        last = self._last_loitering_alert
        if not rule.enabled or (last is not None and 0 <= now - last < rule.cooldown_s):
            return []
        self._last_loitering_alert = now
        visit = event.visit
        detail = (f"a person in zone {visit.camera_id}/{visit.zone_id} for {visit.dwell_s(now):.0f} s, "
                  "longer than its loitering_s")  # fmt: skip
        people, violating = (status.occupancy, status.people_in_violation) if status else (0, 0)
        return [AreaAlert(self.area.id, "loitering", now, people, violating, detail)]

    def masks(self, counts: MaskCounts, timestamp: float, status: AreaUpdate | None) -> list[AreaAlert]:
        """An alert for a minute with too many unmasked people, at most once per cooldown."""
        rule, last = self.area.mask_alert, self._last_mask_alert
        judged = counts.masked + counts.unmasked
        if not rule.enabled or judged < rule.min_people or counts.unmasked <= rule.max_unmasked_share * judged:
            return []
        if last is not None and 0 <= timestamp - last < rule.cooldown_s:
            return []
        self._last_mask_alert = timestamp
        share, limit = 100 * counts.unmasked / judged, 100 * rule.max_unmasked_share
        detail = f"{counts.unmasked} of {judged} people judged in a minute unmasked ({share:.0f} %, over {limit:.0f} %)"
        people, violating = (status.occupancy, status.people_in_violation) if status else (0, 0)
        return [AreaAlert(self.area.id, "unmasked", timestamp, people, violating, detail)]

    def _occupancy_rule_met(self, status: AreaUpdate) -> bool:
        rule, now, threshold = self.area.occupancy_alert, status.timestamp, status.threshold
        if threshold is None or status.occupancy <= threshold - rule.hysteresis:
            self._over_since, self._occupancy_armed = None, True
            return False
        if status.occupancy <= threshold:  # within the hysteresis: a time over goes on, none begins
            return False
        if self._over_since is None:
            self._over_since = now
        due = _due(now, self._over_since, self._last_occupancy_alert, rule.min_duration_s, rule.cooldown_s)
        return self._occupancy_armed and due

    def _violation_rule_met(self, status: AreaUpdate) -> bool:
        rule, now = self.area.violation_alert, status.timestamp
        if not rule.enabled:
            return False
        if status.people_in_violation < rule.min_people:
            if self._violating_since is not None and now - self._last_violating > rule.clear_after_s:
                self._violating_since = None
            return False
        self._last_violating = now
        if self._violating_since is None:
            self._violating_since = now
        return _due(now, self._violating_since, self._last_violation_alert, rule.min_duration_s, rule.cooldown_s)

    def _alert(self, kind: AlertKind, status: AreaUpdate, detail: str) -> AreaAlert:
        return AreaAlert(self.area.id, kind, status.timestamp, status.occupancy, status.people_in_violation, detail)


def _due(now: float, since: float, last_alert: float | None, min_duration_s: float, cooldown_s: float) -> bool:
    """A condition that has held since `since` alerts once it lasted and the last alert cooled."""
    return now - since >= min_duration_s and (last_alert is None or now - last_alert >= cooldown_s)
