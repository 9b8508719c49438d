"""Notifications: alerts and reports to people (email, Slack) and systems (webhooks)."""

from appliance.runtime.outputs.notifications.output import NotificationsOutput

__all__ = ["NotificationsOutput"]
