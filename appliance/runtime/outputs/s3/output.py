"""The S3 output: every camera's anonymized screenshot at its period, kept in a spool and
uploaded by its own sender (as a notification channel is), and the incremental backup on a
thread of its own, retried with backoff when the bucket is away. Both report as outputs of
their own: s3/screenshots and s3/backup."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from appliance.config import LoadedProfile
from appliance.config.model import S3Config
from appliance.runtime.commands import Dispatcher, TakeSnapshot
from appliance.runtime.events import Event, Snapshot
from appliance.runtime.outputs.base import Output
from appliance.runtime.outputs.channels.base import Attachment, ChannelRefused, DeliveryFailed, Message, message_id
from appliance.runtime.outputs.channels.sender import FIRST_BACKOFF_S, MAX_BACKOFF_S, ChannelSender
from appliance.runtime.outputs.s3.backup import key_base
from appliance.runtime.outputs.spool import Spool, SpoolLimits
from appliance.runtime.state import OutputStats

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
SNAPSHOT_SOURCE = "s3"
FIRST_BACKUP_DELAY_S = 10.0  # after start: let the event log and the history store settle


class S3Output(Output):
    name = "s3"

    def __init__(self, loaded: LoadedProfile, dispatcher: Dispatcher) -> None:
        self.loaded = loaded
        self.dispatcher = dispatcher
        self.screenshots: ChannelSender | None = None
        self.backup: BackupJob | None = None
        self._last_asked: dict[str, float] = {}
        self._asked: set[str] = set()
        self.active = False

    @property
    def config(self) -> S3Config:
        return self.loaded.profile.s3

    def start(self) -> None:
        self._open()

    def wants(self, event: Event) -> bool:
        return isinstance(event, Snapshot)

    def handle(self, event: Event) -> None:
        if isinstance(event, Snapshot) and event.camera_id in self._asked and self.screenshots is not None:
            self._asked.discard(event.camera_id)
            self.screenshots.put(self._screenshot(event))
        self._ask()

    def idle(self) -> None:
        self._ask()

    def reconfigure(self, loaded: LoadedProfile) -> None:
        old, self.loaded = self.loaded, loaded
        if (old.profile.s3, old.profile.storage.data_dir, old.profile.device) != (
            loaded.profile.s3, loaded.profile.storage.data_dir, loaded.profile.device):  # fmt: skip
            self.close()
            self._open()

    def close(self) -> None:
        if self.screenshots is not None:
            self.screenshots.stop()
        if self.backup is not None:
            self.backup.stop()
        self.screenshots, self.backup, self.active = None, None, False

    def parts(self) -> tuple[OutputStats, ...]:
        parts = [self.screenshots.stats] if self.screenshots is not None else []
        if self.backup is not None:
            parts.append(self.backup.stats)
        return tuple(parts)

    def _open(self) -> None:
        config, profile = self.config, self.loaded.profile
        if not config.enabled:
            return
        data_dir = Path(profile.storage.data_dir)
        from appliance.runtime.outputs.channels.s3 import S3Transport, s3_client  # boto3: only where S3 is on

        client = s3_client(config)  # one for both: clients are thread-safe, and each costs tens of ms
        if config.screenshots.enabled:
            limits = SpoolLimits(config.queue.max_messages, config.queue.max_bytes, config.queue.max_age_s)
            spool = Spool(data_dir / "s3" / "screenshots.sqlite3", limits)
            self.screenshots = ChannelSender(S3Transport(config, profile.device.id, client=client), spool)
            self.screenshots.start()
        if config.backup.enabled:
            self.backup = BackupJob(config, data_dir, profile.device.id, client)
            self.backup.start()
        self.active = True

    def _ask(self) -> None:
        """Ask each camera due for a screenshot for a snapshot."""
        if self.screenshots is None:
            return
        now, wanted = time.monotonic(), self.config.screenshots
        cameras = wanted.cameras or tuple(c.id for c in self.loaded.profile.cameras if c.enabled)
        for camera in cameras:
            if now - self._last_asked.get(camera, float("-inf")) >= wanted.interval_s:
                self._last_asked[camera] = now
                if self.dispatcher.execute(TakeSnapshot(camera, SNAPSHOT_SOURCE)):
                    self._asked.add(camera)

    def _screenshot(self, snapshot: Snapshot) -> Message:
        profile = self.loaded.profile
        taken = datetime.fromtimestamp(snapshot.timestamp, ZoneInfo(profile.device.timezone))
        key = (f"{key_base(profile.s3.prefix, profile.device.id)}screenshots/{snapshot.camera_id}/"
               f"{taken:%Y-%m-%d}/{taken:%H%M%S}-{taken.microsecond // 1000:03d}.jpg")  # fmt: skip
        body = {"type": "screenshot", "camera": snapshot.camera_id, "t": snapshot.timestamp, "key": key}
        attachment = Attachment(f"{snapshot.camera_id}.jpg", "image/jpeg", snapshot.jpeg)
        return Message(message_id(), "screenshot", key, "", body, time.time(), (attachment,), key=key)


class BackupJob:
    """Backs the data folder up every interval on its own thread."""

    name = "s3/backup"

    def __init__(self, config: S3Config, data_dir: Path, device_id: str, client: S3Client) -> None:
        self.config, self.data_dir, self.device_id, self.client = config, data_dir, device_id, client
        self.done = self.failed = 0
        self.problem: str | None = None
        self._refused = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3-backup", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    @property
    def stats(self) -> OutputStats:
        return OutputStats(self.name, queued=0, handled=self.done, dropped=0, failures=self.failed, lost=0,
                           problem=self.problem, delivered=self.done)  # fmt: skip

    def _run(self) -> None:
        wait, backoff = FIRST_BACKUP_DELAY_S, 0.0
        while not self._stop.wait(wait):
            failure = self.run_once()
            if failure is None:
                wait, backoff = self.config.backup.interval_s, 0.0
            elif isinstance(failure, ChannelRefused):
                return  # until the profile changes, which makes a new job
            else:
                backoff = min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, 2 * backoff))
                wait = backoff

    def run_once(self) -> DeliveryFailed | None:
        """One backup; the failure, or None."""
        from appliance.runtime.outputs.channels.s3 import UPLOAD_ERRORS, s3_failure
        from appliance.runtime.outputs.s3.backup import BackupError, Bucket, back_up

        try:
            bucket = Bucket(self.client, self.config.bucket, key_base(self.config.prefix, self.device_id))
            result = back_up(bucket, self.data_dir, self.data_dir / "s3" / "backup-cache.json",
                             device_id=self.device_id, keep=self.config.backup.keep)  # fmt: skip
        except (*UPLOAD_ERRORS, BackupError) as error:
            self.failed += 1
            failure = s3_failure(error, self.config.bucket) if not isinstance(error, BackupError) else None
            failure = failure or DeliveryFailed(str(error))
            self._set_problem(str(failure), refused=isinstance(failure, ChannelRefused))
            return failure
        self.done += 1
        self._set_problem(None, refused=False)
        log.info("s3/backup: %s: %d file(s), %.1f MB; uploaded %d new chunk(s), %.1f MB, in %.1f s",
                 result.manifest, result.files, result.bytes / 1e6, result.chunks_uploaded, result.bytes_uploaded / 1e6,
                 result.seconds)  # fmt: skip
        return None

    def _set_problem(self, problem: str | None, *, refused: bool) -> None:
        if problem != self.problem:
            if problem is None:
                log.info("s3/backup: backing up again")
            else:
                log.log(logging.ERROR if refused else logging.WARNING, "s3/backup: %s", problem)
        self.problem = problem
