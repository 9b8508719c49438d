"""Notifications and S3 in a real runtime: a kit sequence in historical mode with an email
channel (a real SMTP server with STARTTLS and AUTH), a webhook with the raw-data feed, anonymized
screenshots and a backup to an S3-compatible server; then a backup restored into an empty folder
gives the same reports."""

from __future__ import annotations

import collections
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from appliance.config import load_profile
from appliance.config.model import ReportScheduleConfig
from appliance.runtime.outputs.notifications.reports import DueReport, ReportSchedule, build_report
from tests.conftest import PETS_VIDEO, run_cli
from tests.runtime import RunningAppliance
from tests.servers import free_port, wait_until
from tests.servers.receivers import HttpReceiver, S3Server, SmtpServer
from tests.test_events import schema_for

PROFILE = """
device: {id: notify, timezone: Europe/Paris}
detector:
  backend: onnxruntime
  model: {path: @MODEL@}
  threads: 1
cameras:
  - {id: cam-a, source: @VIDEO@, fps_cap: 5}
areas:
  - id: hall
    cameras: [cam-a]
    occupancy_threshold: 3
    occupancy_alert: {min_duration_s: 2, cooldown_s: 10, channels: [ops, crm]}
    violation_alert: {channels: [ops, dead]}
notifications:
  email:
    - {id: ops, host: 127.0.0.1, port: @SMTP_PORT@, ca_file: @CA@, username: appliance,
       password: "${env:SMTP_PASSWORD}", sender: appliance@site.example, to: [ops@site.example]}
    - {id: dead, host: 127.0.0.1, port: @DEAD_PORT@, security: none, sender: a@site.example, to: [b@site.example]}
  webhooks:
    - {id: crm, url: "@HOOK@", authorization: "${env:HOOK_TOKEN}", raw_data: {enabled: true, interval_s: 1}}
s3:
  enabled: true
  endpoint_url: "@S3@"
  bucket: site-data
  access_key_id: test
  secret_access_key: "${env:S3_SECRET}"
  screenshots: {enabled: true, interval_s: 10}
storage:
  data_dir: @DATA_DIR@
  event_log: {sample_interval_s: 0}
metrics: {listen: "127.0.0.1:@METRICS_PORT@"}
"""
SECRETS = {"SMTP_PASSWORD": "s3cret-pass", "HOOK_TOKEN": "Bearer hook-token-42", "S3_SECRET": "s3-secret-key-77"}


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[SmtpServer, HttpReceiver, S3Server]]:
    smtp, hook, s3 = SmtpServer(tmp_path).start(), HttpReceiver().start(), S3Server().start()
    s3.client().create_bucket(Bucket="site-data")
    yield smtp, hook, s3
    smtp.stop()
    hook.stop()
    s3.stop()


def test_alerts_raw_data_screenshots_and_a_restored_backup_from_a_real_run(
    data: Path, tmp_path: Path, servers: tuple[SmtpServer, HttpReceiver, S3Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp, hook, s3 = servers
    profile = (PROFILE.replace("@MODEL@", str(data / "models/yolox_nano_onnx/yolox_nano.onnx"))
               .replace("@VIDEO@", str(data / PETS_VIDEO)).replace("@SMTP_PORT@", str(smtp.port))
               .replace("@DEAD_PORT@", str(free_port()))
               .replace("@CA@", str(smtp.ca_file)).replace("@HOOK@", hook.url).replace("@S3@", s3.url))  # fmt: skip
    running = RunningAppliance(
        tmp_path,
        profile,
        env=SECRETS,
        extra_args=("--input", str(data / PETS_VIDEO), "--start", "2026-12-01T10:00:00+01:00"),
    )
    try:
        down = 'appliance_output_up{output="email/dead"} 0.0'
        assert wait_until(lambda: down in metrics(running), 120), running.log
        assert 'appliance_output_up{output="email/ops"} 1.0' in metrics(running)
        assert running.process.wait(300) == 0, running.log
    finally:
        running.kill()
    records = [json.loads(line) for path in (running.data_dir / "events").glob("*/*.jsonl")
               for line in path.read_text().splitlines()]  # fmt: skip
    alerts = [r for r in records if r["type"] == "alert"]
    assert alerts, "the sequence should go over the threshold of 3"
    emailed = [m for m in smtp.messages if "Occupancy over threshold" in str(m["Subject"])]
    assert len(emailed) == sum(a["kind"] == "occupancy" for a in alerts)
    assert any(p.get_filename() == "cam-a.jpg" for m in emailed for p in m.iter_attachments())
    assert "more than the threshold of 3" in emailed[0].get_body().get_content()  # type: ignore[union-attr]
    assert_webhook_got_everything(hook, records)
    for secret in SECRETS.values():
        assert secret.split()[-1] not in running.log
    screenshots = s3.client().list_objects_v2(Bucket="site-data", Prefix="notify/screenshots/cam-a/")
    assert screenshots.get("KeyCount", 0) >= 1
    assert "email/dead: unreachable" in running.log and running.log.count("email/dead: unreachable") == 1
    waiting = list((running.data_dir / "notifications" / "queue").glob("email-dead.sqlite3"))
    assert waiting, "the dead channel's messages stay on disk for the next start"
    assert_backup_restores_the_same_reports(running, tmp_path)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    assert_daily_report_tells_the_day(running)


def metrics(running: RunningAppliance) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""


def assert_webhook_got_everything(hook: HttpReceiver, records: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    unique = [r for r in hook.requests if not (r["headers"]["X-Appliance-Message-Id"] in seen
                                               or seen.add(r["headers"]["X-Appliance-Message-Id"]))]  # fmt: skip
    for request in unique:
        assert not list(schema_for(request["json"]["type"]).iter_errors(request["json"]))
    notifications = [r["json"] for r in unique if r["json"]["type"] == "notification"]
    assert len(notifications) == sum(r["type"] == "alert" and r["kind"] == "occupancy" for r in records)
    events = [e for r in unique if r["json"]["type"] == "batch" for e in r["json"]["events"]]
    raw = collections.Counter(e["type"] if e["type"] != "episode" else f"episode {e['state']}" for e in events)
    logged = collections.Counter(r["type"] for r in records)  # the log keeps episodes once they end
    assert raw["detections"] == logged["detections"] > 0 and raw["episode ended"] == logged["episode"]
    assert all(r["headers"]["Authorization"] == "Bearer hook-token-42" for r in hook.requests)


def assert_backup_restores_the_same_reports(running: RunningAppliance, tmp_path: Path) -> None:
    env = {"S3_SECRET": SECRETS["S3_SECRET"], "SMTP_PASSWORD": "x", "HOOK_TOKEN": "x"}
    done = run_cli("backup", "--profile", str(running.profile_path), "now", env=env)
    assert done.returncode == 0 and "backed up" in done.stdout, done.stderr
    again = run_cli("backup", "--profile", str(running.profile_path), "now", env=env)
    assert again.returncode == 0 and " 0 new chunk(s)" in again.stdout, again.stdout  # nothing changed
    restored = tmp_path / "restored"
    done = run_cli("backup", "--profile", str(running.profile_path), "restore", "--into", str(restored), env=env)
    assert done.returncode == 0 and "every chunk and file checked" in done.stdout, done.stderr
    refused = run_cli("backup", "--profile", str(running.profile_path), "restore", "--into", str(restored), env=env)
    assert refused.returncode == 2 and "not an empty folder" in refused.stderr
    copy = tmp_path / "restored-profile.yaml"
    copy.write_text(running.profile_path.read_text().replace(str(running.data_dir), str(restored)))

    def report(profile: Path) -> Any:
        done = run_cli("report", str(profile), "--area", "hall", "--every", "hour", "--from", "2026-12-01",
                       "--to", "2026-12-02", "--format", "json", env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["rows"]

    rows = report(running.profile_path)
    assert report(copy) == rows and sum(row["alerts"] for row in rows) > 0


def assert_daily_report_tells_the_day(running: RunningAppliance) -> None:
    """The daily report of the run's day: figures from the history store, the area's chart; sent
    once when due, none owed on a device's first start."""
    loaded = load_profile(running.profile_path)
    message = build_report(loaded.profile, DueReport("daily", date(2026, 12, 1), 1), time.time())
    assert message.subject == "[notify] Daily report for Tuesday 01 December 2026"
    assert (
        "Areas\n  hall: peak " in message.text
        and "alert(s)" in message.text
        and "Cameras\n  cam-a: peak" in message.text
    )
    [chart] = message.attachments
    assert chart.name == "area-hall-2026-12-01.png" and chart.data.startswith(b"\x89PNG")
    schedule = ReportSchedule(running.data_dir / "notifications" / "reports.json")
    daily = ReportScheduleConfig(enabled=True, at="08:00", channels=("ops",))
    profile = replace(loaded.profile, notifications=replace(loaded.profile.notifications, daily_report=daily))
    morning = datetime(2026, 12, 2, 9, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    assert schedule.due(profile, morning) == []  # the first start: nothing owed
    later = datetime(2026, 12, 4, 9, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    [due] = ReportSchedule(schedule.path).due(profile, later)  # read back from disk, as after a restart
    assert due.key == "2026-12-03"  # the newest only, once
