"""Area alerts: over the occupancy threshold, and the distancing rule of `areas[].violation_alert`
(at least `min_people` in violation at once for `min_duration_s`, at most once per `cooldown_s`).
Pure: counts and event times in, alerts out."""

from __future__ import annotations

from appliance.config.model import AreaConfig
from appliance.runtime.events import AlertKind, AreaAlert, AreaUpdate


class AreaAlerts:
    """The alert state of one area between its updates."""

    def __init__(self, area: AreaConfig) -> None:
        self.area = area
        self._over = False
        self._violating_since: float | None = None
        self._last_violation_alert: float | None = None
        self._last_time = float("-inf")

    def update(self, status: AreaUpdate) -> list[AreaAlert]:
        now = status.timestamp
        if now < self._last_time:  # a recording started over: its clock went back
            self._violating_since = self._last_violation_alert = None
        self._last_time = now
        alerts = []
        if status.over_threshold and not self._over:
            detail = f"{status.people} people, more than the threshold of {status.threshold}"
            alerts.append(self._alert("occupancy", status, detail))
        self._over = status.over_threshold
        if self._violation_rule_met(status):
            rule = self.area.violation_alert
            detail = f"{status.people_in_violation} people in violation for {rule.min_duration_s:g} s or more"
            alerts.append(self._alert("violation", status, detail))
            self._last_violation_alert = now
        return alerts

    def _violation_rule_met(self, status: AreaUpdate) -> bool:
        rule, now = self.area.violation_alert, status.timestamp
        if not rule.enabled or status.people_in_violation < rule.min_people:
            self._violating_since = None
            return False
        if self._violating_since is None:
            self._violating_since = now
        lasted = now - self._violating_since >= rule.min_duration_s
        cooled = self._last_violation_alert is None or now - self._last_violation_alert >= rule.cooldown_s
        return lasted and cooled

    def _alert(self, kind: AlertKind, status: AreaUpdate, detail: str) -> AreaAlert:
        return AreaAlert(self.area.id, kind, status.timestamp, status.people, status.people_in_violation, detail)
