"""The notifications output: area alerts to the channels their rule names (with anonymized
snapshots of the area's cameras where the channel can carry them), daily and weekly reports at
their local time, and the raw-data feed of webhooks. Every message goes into its channel's spool
at once; each channel's own sender delivers it (channels/sender.py), so nothing here waits for a
mail server or a webhook."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from appliance.config import LoadedProfile
from appliance.config.model import AreaConfig, ChannelConfig, NotificationsConfig, WebhookChannelConfig
from appliance.runtime.commands import Dispatcher, TakeSnapshot
from appliance.runtime.events import AreaAlert, Event, Snapshot
from appliance.runtime.outputs.base import Output
from appliance.runtime.outputs.channels import slack, smtp, webhook  # noqa: F401 - each registers its transport
from appliance.runtime.outputs.channels.base import Attachment, Message, Transport
from appliance.runtime.outputs.channels.sender import ChannelSender
from appliance.runtime.outputs.notifications.compose import alert_message
from appliance.runtime.outputs.notifications.rawdata import RawFeed
from appliance.runtime.outputs.notifications.reports import ReportSchedule, build_report
from appliance.runtime.outputs.spool import Spool, SpoolLimits
from appliance.runtime.state import OutputStats

log = logging.getLogger(__name__)
REPORT_CHECK_S = 20.0
SNAPSHOT_SOURCE = "notifications"
DRAIN_S = 5.0  # on stop, what waits may still go out this long; the rest goes at the next start


@dataclass
class _Waiting:
    """An alert's message in a spool, held back until its cameras' snapshots come."""

    sender: ChannelSender
    row: int
    message: Message
    cameras: set[str]
    deadline: float
    attached: set[str] = field(default_factory=set)


class NotificationsOutput(Output):
    name = "notifications"

    def __init__(self, loaded: LoadedProfile, dispatcher: Dispatcher, *, historical: bool) -> None:
        self.loaded = loaded
        self.dispatcher = dispatcher
        self.historical = historical
        self.senders: dict[str, ChannelSender] = {}
        self.feeds: dict[str, RawFeed] = {}
        self.waiting: list[_Waiting] = []
        self.schedule = ReportSchedule(self._folder / "reports.json")
        self._reports_checked = 0.0
        self.active = False

    @property
    def config(self) -> NotificationsConfig:
        return self.loaded.profile.notifications

    @property
    def _folder(self) -> Path:
        return Path(self.loaded.profile.storage.data_dir) / "notifications"

    def start(self) -> None:
        self._open()

    def wants(self, event: Event) -> bool:
        return isinstance(event, AreaAlert | Snapshot) or (bool(self.feeds) and RawFeed.wants(event))

    def handle(self, event: Event) -> None:
        match event:
            case AreaAlert():
                self._alert(event)
            case Snapshot():
                self._snapshot(event)
        for feed in self.feeds.values():
            feed.take(event)
        self._housekeeping()

    def idle(self) -> None:
        self._housekeeping()

    def reconfigure(self, loaded: LoadedProfile) -> None:
        old, self.loaded = self.loaded, loaded
        before, now = old.profile, loaded.profile
        if (before.notifications, before.storage.data_dir, before.device) != (
            now.notifications, now.storage.data_dir, now.device):  # fmt: skip
            self._close_senders()
            self.schedule = ReportSchedule(self._folder / "reports.json")
            self._open()

    def close(self) -> None:
        self._flush_feeds(time.time(), force=True)
        deadline = time.monotonic() + DRAIN_S
        for sender in self.senders.values():
            sender.drain(deadline)
        self._close_senders()

    def parts(self) -> tuple[OutputStats, ...]:
        return tuple(sender.stats for sender in self.senders.values())

    def _open(self) -> None:
        config, now = self.config, time.time()
        limits = SpoolLimits(config.queue.max_messages, config.queue.max_bytes, config.queue.max_age_s)
        channels: tuple[ChannelConfig, ...] = (*config.email, *config.slack, *config.webhooks)
        for channel in channels:
            transport = make_transport(channel, self.loaded.profile.device.id)
            spool = Spool(self._folder / "queue" / f"{transport.kind}-{channel.id}.sqlite3", limits)
            self.senders[channel.id] = ChannelSender(transport, spool)
            self.senders[channel.id].start()
            if isinstance(channel, WebhookChannelConfig) and channel.raw_data.enabled:
                self.feeds[channel.id] = RawFeed(channel.raw_data, self.loaded.profile.device.id, now)
        self.active = bool(self.senders)

    def _close_senders(self) -> None:
        for sender in self.senders.values():
            sender.stop()
        self.senders, self.feeds, self.waiting = {}, {}, []
        self.active = False

    def _alert(self, alert: AreaAlert) -> None:
        profile, now = self.loaded.profile, time.time()
        area = next((a for a in profile.areas if a.id == alert.area_id), None)
        if area is None:
            return
        senders = [self.senders[c] for c in _rule_channels(area, alert.kind) if c in self.senders]
        if not senders:
            return
        message = alert_message(alert, profile, now)
        cameras = self._ask_snapshots(area.cameras + tuple(z.split("/")[0] for z in area.zones))
        deadline = now + self.config.snapshot_wait_s
        for sender in senders:
            row = sender.put(message, not_before=deadline if cameras else 0.0)
            if cameras:
                self.waiting.append(_Waiting(sender, row, message, set(cameras), deadline))

    def _ask_snapshots(self, cameras: tuple[str, ...]) -> set[str]:
        """The running cameras asked for a snapshot (none when alerts go without)."""
        if self.config.snapshot_wait_s <= 0:
            return set()
        unique = dict.fromkeys(cameras)
        return {c for c in unique if self.dispatcher.execute(TakeSnapshot(c, SNAPSHOT_SOURCE))}

    def _snapshot(self, snapshot: Snapshot) -> None:
        for waiting in self.waiting:
            camera = snapshot.camera_id
            if camera not in waiting.cameras or camera in waiting.attached:
                continue
            waiting.attached.add(camera)
            waiting.message = waiting.message.with_attachment(Attachment(f"{camera}.jpg", "image/jpeg", snapshot.jpeg))
            complete = waiting.attached >= waiting.cameras
            waiting.sender.amend(waiting.row, waiting.message, not_before=0.0 if complete else waiting.deadline)
        self.waiting = [w for w in self.waiting if not w.attached >= w.cameras]

    def _housekeeping(self) -> None:
        now = time.time()
        self.waiting = [w for w in self.waiting if w.deadline > now]
        self._flush_feeds(now)
        if not self.historical and now - self._reports_checked >= REPORT_CHECK_S:
            self._reports_checked = now
            self._send_reports(now)

    def _flush_feeds(self, now: float, *, force: bool = False) -> None:
        for channel_id, feed in self.feeds.items():
            if force or feed.due(now):
                for message in feed.flush(now):
                    self.senders[channel_id].put(message)

    def _send_reports(self, now: float) -> None:
        profile = self.loaded.profile
        for due in self.schedule.due(profile, now):
            schedule = (
                profile.notifications.daily_report if due.which == "daily" else profile.notifications.weekly_report
            )
            message = build_report(profile, due, now)
            for channel in schedule.channels:
                if channel in self.senders:
                    self.senders[channel].put(message)
            self.schedule.mark(due)
            log.info("notifications: the %s report for %s went to %s", due.which, due.key, ", ".join(schedule.channels))


def _rule_channels(area: AreaConfig, kind: str) -> tuple[str, ...]:
    if kind == "occupancy":
        return area.occupancy_alert.channels
    if kind == "violation":
        return area.violation_alert.channels
    if kind == "unmasked":
        return area.mask_alert.channels
    return area.loitering_alert.channels


def make_transport(channel: ChannelConfig, device_id: str) -> Transport:
    return Transport.registry[type(channel)](channel, device_id)
