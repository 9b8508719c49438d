"""Notifications and S3: what every channel costs the pipeline, and what survives outages, a
SIGTERM and a kill -9 of the appliance. Real servers on loopback: aiosmtpd (STARTTLS, AUTH), an
HTTP server for the webhook and Slack, moto's S3 server.

    .venv/bin/python bench/notifications.py [--repeats 3] [--loops 3] [--skip-loss] [--skip-fps]

- FPS: `appliance run --input` on PETS09-S2L1 played `--loops` times in a row (3: 2385 frames, joined
  without re-encoding by ffmpeg) with every channel off, every channel on (email and Slack for
  each alert, a webhook with alerts and raw data every second, S3 screenshots every 10 s and a
  backup), and every channel on with the email server down; alternating, median of the repeats,
  ratios against "off" from the same run. The recording is looped so that what a channel costs
  once (importing boto3, about 0.4 s of CPU) weighs on a run of minutes rather than seconds, as
  on a device that runs for days; `--loops 1` measures the bare recording.
- Loss: live runs (the recording played as a camera, in real time) on one data folder: (1) all
  four servers (SMTP, Slack, webhook, S3) stopped for 60 s in the middle of a run, then the
  appliance stopped with SIGTERM; (2) the servers stopped, then the appliance killed with
  SIGKILL; (3) the servers back, the next start delivers what waited. Every alert of the event
  log must then have arrived by email, Slack and webhook (one alert is one message id on every
  channel), and duplicates are counted (dropped by id, as a receiver would).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.servers import free_port
from tests.servers.receivers import HttpReceiver, S3Server, SmtpServer

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPLIANCE_TEST_DATA", REPO.parent / "shared" / "data"))
VIDEO = DATA / "sequences/PETS09-S2L1/vtest.avi"
SECRETS = {"SMTP_PASSWORD": "s3cret-pass", "S3_SECRET": "test"}
OUTAGE_S = 60.0
SHOWN_HEADERS = ("Subject", "From", "To", "Date", "Message-ID", "Content-Type")


def profile(folder: Path, name: str, servers: Servers | None, *, email_port: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = (f"extends: {REPO / 'profiles' / 'x86.yaml'}\nstorage: {{data_dir: {folder / 'data'}}}\n"
            f"metrics: {{enabled: false}}\napi: {{enabled: false}}\n"
            f"cameras:\n  - {{id: lobby, source: {VIDEO}}}\n")  # fmt: skip
    if servers is None:
        text += "areas:\n  - {id: hall, cameras: [lobby], occupancy_threshold: 3}\n"
    else:
        routes = "channels: [ops, team, crm]"
        port = email_port or servers.smtp.port
        text += f"""areas:
  - id: hall
    cameras: [lobby]
    occupancy_threshold: 3
    occupancy_alert: {{min_duration_s: 2, cooldown_s: 10, {routes}}}
    violation_alert: {{{routes}}}
notifications:
  email:
    - {{id: ops, host: 127.0.0.1, port: {port}, ca_file: {servers.smtp.ca_file}, username: appliance,
       password: "${{env:SMTP_PASSWORD}}", sender: appliance@site.example, to: [ops@site.example]}}
  slack:
    - {{id: team, url: "{servers.slack.url}"}}
  webhooks:
    - {{id: crm, url: "{servers.hook.url}", raw_data: {{enabled: true, interval_s: 1}}}}
s3:
  enabled: true
  endpoint_url: "{servers.s3.url}"
  bucket: bench
  access_key_id: test
  secret_access_key: "${{env:S3_SECRET}}"
  screenshots: {{enabled: true, interval_s: 10}}
  backup: {{enabled: true, interval_s: 60}}
"""
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


class Servers:
    def __init__(self, folder: Path) -> None:
        self.smtp = SmtpServer(folder).start()
        self.slack = HttpReceiver().start()
        self.hook = HttpReceiver().start()
        self.s3 = S3Server().start()
        self.s3.client().create_bucket(Bucket="bench")

    def stop(self) -> None:
        for server in (self.smtp, self.slack, self.hook, self.s3):
            server.stop()

    def start(self) -> None:
        for server in (self.smtp, self.slack, self.hook, self.s3):
            server.start()

    def close(self) -> None:
        self.stop()


def looped(folder: Path, loops: int) -> Path:
    """The recording `loops` times in a row, its packets copied (no re-encoding)."""
    if loops == 1:
        return VIDEO
    listing = folder / "loop.txt"
    listing.write_text(f"file '{VIDEO}'\n" * loops)
    target = folder / "loop.avi"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    str(target)], check=True, timeout=120)  # fmt: skip
    return target


def run(path: Path, video: Path = VIDEO) -> subprocess.Popen[str]:
    command = ["appliance", "--log-level", "info", "run", "--profile", str(path), "--input", str(video),
               "--start", "2026-12-01T10:00:00+01:00"]  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **SECRETS}, cwd=REPO)  # fmt: skip


@dataclass(frozen=True)
class RunCost:
    fps: float
    cpu_ms_per_frame: float  # the appliance's processes together, start to end


def fps(path: Path, video: Path) -> RunCost:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = run(path, video)
    _, stderr = process.communicate(timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"(\d+) frames in [\d.]+ s, ([\d.]+) fps", stderr)
    if process.returncode != 0 or match is None:
        raise RuntimeError(stderr[-2000:])
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return RunCost(float(match.group(2)), 1000 * cpu_s / int(match.group(1)))


def measure_fps(folder: Path, servers: Servers, repeats: int, video: Path) -> dict[str, list[RunCost]]:
    variants = {
        "all off": profile(folder / "off", "off", None),
        "all on": profile(folder / "on", "on", servers),
        "all on, email down": profile(folder / "down", "down", servers, email_port=free_port()),
    }
    results: dict[str, list[RunCost]] = {name: [] for name in variants}
    for repeat in range(repeats):
        for name, path in variants.items():
            results[name].append(fps(path, video))
            cost = results[name][-1]
            print(f"  repeat {repeat + 1}: {name}: {cost.fps:.1f} fps, {cost.cpu_ms_per_frame:.1f} ms CPU a frame",
                  file=sys.stderr)  # fmt: skip
    return results


def measure_loss(folder: Path, servers: Servers) -> dict[str, Any]:
    """Live runs (the recording played as a camera, in real time) on one data folder."""
    path = profile(folder, "loss", servers)
    for receiver in (servers.smtp.messages, servers.slack.requests, servers.hook.requests):
        receiver.clear()  # what the FPS runs sent
    shots_before = screenshots(servers)
    first = live(path)  # (1) every server away for 60 s in the middle of a run, then SIGTERM
    time.sleep(10)
    servers.stop()
    time.sleep(OUTAGE_S)
    servers.start()
    time.sleep(10)
    stop(first, signal.SIGTERM)
    second = live(path)  # (2) every server away, then the appliance killed with SIGKILL
    time.sleep(10)
    servers.stop()
    time.sleep(5)
    stop(second, signal.SIGKILL)
    servers.start()
    third = live(path)  # (3) the next start delivers what waited, then SIGTERM
    time.sleep(20)
    stop(third, signal.SIGTERM)
    records = [json.loads(line) for log in (folder / "data" / "events").glob("*/*.jsonl")
               for line in log.read_text().splitlines() if line.strip()]  # fmt: skip
    alerts = {(r["area"], r["kind"], round(r["t"], 3)) for r in records if r["type"] == "alert"}
    return {"alerts in the event log": len(alerts), **received(servers, alerts),
            "s3: screenshots uploaded by the three runs": screenshots(servers) - shots_before,
            "messages still waiting in a spool after the third run": waiting(folder / "data")}  # fmt: skip


def screenshots(servers: Servers) -> int:
    listing = servers.s3.client().list_objects_v2(Bucket="bench", Prefix="x86-cpu/screenshots/")
    return int(listing["KeyCount"])


def waiting(data_dir: Path) -> int:
    """Messages left in every notification and screenshot spool: what was taken but not delivered."""
    spools = [*(data_dir / "notifications" / "queue").glob("*.sqlite3"), data_dir / "s3" / "screenshots.sqlite3"]
    total = 0
    for path in spools:
        with closing(sqlite3.connect(path)) as db:
            total += db.execute("SELECT count(*) FROM messages").fetchone()[0]
    return total


def live(path: Path) -> subprocess.Popen[str]:
    command = ["appliance", "--log-level", "info", "run", "--profile", str(path)]
    return subprocess.Popen([sys.executable, "-m", *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, **SECRETS}, cwd=REPO)  # fmt: skip


def stop(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    process.send_signal(sig)
    process.wait(60)


def received(servers: Servers, alerts: set[tuple[str, str, float]]) -> dict[str, Any]:
    """What arrived, against the event log's alerts. One alert is one message id on every channel:
    a webhook body names its alert, and email (Message-ID) and Slack (the text's ref) carry the id."""
    hook_ids = [r["headers"]["X-Appliance-Message-Id"] for r in servers.hook.requests]
    alert_ids = {b["id"]: (b["body"]["area"], b["body"]["kind"], round(b["body"]["t"], 3))
                 for b in servers.hook.bodies() if b["type"] == "notification" and b["kind"] == "alert"}  # fmt: skip
    email_ids = servers.smtp.ids()
    slack_refs = [m.group(1) for b in servers.slack.bodies() if (m := re.search(r"· ref ([0-9a-f]{12})", b["text"]))]
    emailed = {alert for message_id, alert in alert_ids.items() if message_id in set(email_ids)}
    slacked = {alert for message_id, alert in alert_ids.items() if message_id[:12] in set(slack_refs)}
    return {
        "alerts sent (ids; a kill -9 may lose an alert from the log, not from the queue)": len(alert_ids),
        "webhook: alerts of the log missing": len(alerts - set(alert_ids.values())),
        "webhook: duplicates (same id)": len(hook_ids) - len(set(hook_ids)),
        "email: alerts of the log missing": len(alerts - emailed),
        "email: duplicates (same id)": len(email_ids) - len(set(email_ids)),
        "email: with a snapshot": sum(any(True for _ in m.iter_attachments()) for m in servers.smtp.messages),
        "email: messages": len(email_ids),
        "slack: alerts of the log missing": len(alerts - slacked),
        "slack: duplicates (same ref)": len(slack_refs) - len(set(slack_refs)),
    }


def email_as_received(message: EmailMessage) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in message.items() if name in SHOWN_HEADERS)
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    files = ", ".join(f"{p.get_filename()} ({p.get_content_type()}, {len(p.get_content())} bytes)"
                      for p in message.iter_attachments())  # fmt: skip
    return f"{headers}\n\n{text}\n[attachments: {files}]"


def print_costs(results: dict[str, list[RunCost]], repeats: int, loops: int) -> None:
    off = statistics.median(c.fps for c in results["all off"])
    off_cpu = statistics.median(c.cpu_ms_per_frame for c in results["all off"])
    print(f"\n## Notifications: FPS ({platform.node()}, {os.cpu_count()} CPUs, {repeats} repeats, "
          f"PETS09-S2L1 x {loops})\n")  # fmt: skip
    print("| channels | FPS (median) | runs | ratio to all off | CPU ms a frame (median) | CPU ratio |")
    print("|---|---|---|---|---|---|")
    for name, costs in results.items():
        median = statistics.median(c.fps for c in costs)
        cpu = statistics.median(c.cpu_ms_per_frame for c in costs)
        runs = ", ".join(f"{c.fps:.1f}" for c in costs)
        print(f"| {name} | {median:.1f} | {runs} | {median / off:.3f} | {cpu:.1f} | {cpu / off_cpu:.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-loss", action="store_true")
    parser.add_argument("--skip-fps", action="store_true")
    parser.add_argument("--loops", type=int, default=3, help="times the recording is played in each FPS run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        servers = Servers(folder)
        try:
            if not args.skip_fps:
                video = looped(folder, args.loops)
                print_costs(measure_fps(folder, servers, args.repeats, video), args.repeats, args.loops)
            if not args.skip_loss:
                loss_folder = folder / "loss"
                loss_folder.mkdir()
                figures = measure_loss(loss_folder, servers)
                print("\n## Notifications: loss across outages, SIGTERM and kill -9\n")
                print("| figure | value |\n|---|---|")
                for name, value in figures.items():
                    print(f"| {name} | {value} |")
                print("\n### One alert email as the SMTP server received it (the attachment's data left out)\n")
                print(f"```\n{email_as_received(servers.smtp.messages[0])}\n```")
        finally:
            servers.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
