"""S3 against moto's S3-compatible server on loopback: screenshots refused by a missing bucket,
backups that upload only what changed, and restores that trust nothing the bucket says."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance.config.model import (
    BackupConfig,
    ReportScheduleConfig,
    S3Config,
    ScreenshotsConfig,
    SpoolConfig,
    WeeklyReportConfig,
)
from appliance.runtime.outputs.channels.base import Attachment, Message, message_id
from appliance.runtime.outputs.channels.s3 import S3Transport, s3_client
from appliance.runtime.outputs.channels.sender import ChannelSender
from appliance.runtime.outputs.notifications.reports import latest_due
from appliance.runtime.outputs.s3.backup import CHUNK_BYTES, BackupError, Bucket, back_up, key_base, restore
from appliance.runtime.outputs.spool import Spool, SpoolLimits
from tests.servers import wait_until
from tests.servers.receivers import S3Server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server().start()
    yield server
    server.stop()


def config(s3: S3Server, bucket: str) -> S3Config:
    return S3Config(enabled=True, bucket=bucket, prefix="site/", endpoint_url=s3.url, region=None, ca_file=None,
                    access_key_id="test", timeout_s=5, screenshots=ScreenshotsConfig(True, 60, ()),
                    backup=BackupConfig(True, 3600, 2), queue=SpoolConfig(100, 1 << 20, 3600),
                    secret_access_key="test")  # fmt: skip


def test_a_missing_bucket_refuses_the_channel_and_the_screenshots_wait(s3: S3Server, tmp_path: Path) -> None:
    sender = ChannelSender(S3Transport(config(s3, "no-such-bucket"), "dev"), Spool(tmp_path / "s.sqlite3",
                           SpoolLimits(100, 1 << 20, 3600)))  # fmt: skip
    sender.start()
    try:
        shot = Message(message_id(), "screenshot", "k", "", {}, time.time(), (Attachment("a.jpg", "image/jpeg", b"x"),),
                       key="site/dev/screenshots/a.jpg")  # fmt: skip
        sender.put(shot)
        assert wait_until(lambda: sender.problem is not None, 20)
        assert sender.problem.startswith("refused: bucket no-such-bucket: NoSuchBucket") and sender.spool.count == 1
        assert sender.name == "s3/screenshots"
    finally:
        sender.stop()


def make_data(folder: Path, event_bytes: int) -> None:
    events = folder / "events" / "cam-a"
    events.mkdir(parents=True)
    line = json.dumps({"type": "frame", "v": 1, "t": 1.0, "camera": "cam-a", "frame": 1, "people": 2}) + "\n"
    (events / "2026-12-01.jsonl").write_text(line * (event_bytes // len(line)))
    (folder / "history").mkdir()
    db = sqlite3.connect(folder / "history" / "history.sqlite")
    with db:
        db.execute("CREATE TABLE minute (minute INTEGER PRIMARY KEY, people INTEGER)")
        db.executemany("INSERT INTO minute VALUES (?, ?)", [(m, m % 7) for m in range(20_000)])
    db.close()


def test_a_backup_uploads_only_what_changed_and_restores_exactly(s3: S3Server, tmp_path: Path) -> None:
    s3.client().create_bucket(Bucket="backups-1")
    settings = config(s3, "backups-1")
    bucket = Bucket(s3_client(settings), settings.bucket, key_base(settings.prefix, "dev"))
    data = tmp_path / "data"
    make_data(data, 3 * CHUNK_BYTES + 1000)
    cache = data / "s3" / "backup-cache.json"
    first = back_up(bucket, data, cache, device_id="dev", keep=2)
    assert first.files == 2 and first.chunks_uploaded >= 5
    again = back_up(bucket, data, cache, device_id="dev", keep=2)
    assert again.chunks_uploaded == 0
    with (data / "events" / "cam-a" / "2026-12-01.jsonl").open("a") as log:
        log.write('{"type": "frame", "late": true}\n')
    grown = back_up(bucket, data, cache, device_id="dev", keep=2)
    assert grown.chunks_uploaded == 1  # the event log's last chunk; the history store did not change
    assert len(bucket.manifests()) == 2  # keep: 2
    restored = tmp_path / "restored"
    result = restore(bucket, restored)
    assert result.files == 2
    for name in ("events/cam-a/2026-12-01.jsonl", "history/history.sqlite"):
        original, copy = data / name, restored / name
        if name.endswith(".sqlite"):
            query = "SELECT count(*), sum(people) FROM minute"
            assert (
                sqlite3.connect(copy).execute(query).fetchone() == sqlite3.connect(original).execute(query).fetchone()
            )
        else:
            assert copy.read_bytes() == original.read_bytes()


def minutes(store: Path) -> tuple[int, int]:
    db = sqlite3.connect(store)
    try:
        count, total = db.execute("SELECT count(*), sum(people) FROM minute").fetchone()
    finally:
        db.close()
    return int(count), int(total)


def test_a_restore_refuses_a_tampered_bucket_and_leaves_nothing(s3: S3Server, tmp_path: Path) -> None:
    client = s3.client()
    client.create_bucket(Bucket="backups-2")
    settings = config(s3, "backups-2")
    bucket = Bucket(s3_client(settings), settings.bucket, key_base(settings.prefix, "dev"))
    make_data(tmp_path / "data", 1000)
    back_up(bucket, tmp_path / "data", tmp_path / "cache.json", device_id="dev", keep=5)
    [name] = bucket.manifests()
    manifest = bucket.read_manifest(name)
    digest = manifest["files"][0]["chunks"][0]
    client.put_object(Bucket="backups-2", Key=bucket.chunk_key(digest), Body=b"not what it was")
    with pytest.raises(BackupError, match="does not match its checksum"):
        restore(bucket, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    manifest["files"][0]["path"] = "../../etc/cron.d/evil"
    client.put_object(Bucket="backups-2", Key=f"{bucket.root}manifests/{name}", Body=json.dumps(manifest).encode())
    with pytest.raises(BackupError, match="names a file outside the data folder"):
        restore(bucket, tmp_path / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(BackupError, match="not an empty folder"):
        restore(bucket, tmp_path / "full")


PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(("now", "which", "first_day"), [
    ("2026-12-04 08:00", "daily", "2026-12-03"),
    ("2026-12-04 07:59", "daily", "2026-12-02"),
    ("2026-03-29 08:30", "daily", "2026-03-28"),  # the day clocks go forward
    ("2026-12-07 08:00", "weekly", "2026-11-30"),  # a Monday: the week before
    ("2026-12-07 07:00", "weekly", "2026-11-23"),
    ("2026-12-09 12:00", "weekly", "2026-11-30"),
])  # fmt: skip
def test_the_report_due_is_the_newest_whose_time_has_passed(now: str, which: str, first_day: str) -> None:
    daily = ReportScheduleConfig(enabled=True, at="08:00", channels=("ops",))
    weekly = WeeklyReportConfig(enabled=True, at="08:00", channels=("ops",), day="mon")
    local = datetime.strptime(now, "%Y-%m-%d %H:%M").replace(tzinfo=PARIS)
    due = latest_due(which, daily if which == "daily" else weekly, local)
    assert due.first_day.isoformat() == first_day and due.days == (1 if which == "daily" else 7)
    assert replace(due, which="x").key == first_day
