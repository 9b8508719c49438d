"""Notification channels and S3 against real servers on loopback: an SMTP server with STARTTLS
and AUTH, an HTTP server for webhooks and Slack, moto's S3 server. Outages are real: the server
is stopped while messages wait in the channel's spool, then started again."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.config.model import EmailChannelConfig, RawDataConfig, SlackChannelConfig, WebhookChannelConfig
from appliance.runtime.outputs.channels.base import Attachment, Message, message_id
from appliance.runtime.outputs.channels.sender import ChannelSender
from appliance.runtime.outputs.channels.slack import SlackTransport
from appliance.runtime.outputs.channels.smtp import EmailTransport
from appliance.runtime.outputs.channels.webhook import WebhookTransport
from appliance.runtime.outputs.spool import Spool, SpoolLimits
from tests.conftest import run_cli
from tests.servers import free_port, wait_until
from tests.servers.receivers import HttpReceiver, SmtpServer

LIMITS = SpoolLimits(max_messages=100, max_bytes=10 << 20, max_age_s=3600)
JPEG = b"\xff\xd8\xff\xe0" + b"pretend-jpeg" * 100


def message(number: int, *, attachments: tuple[Attachment, ...] = ()) -> Message:
    body = {"type": "alert", "v": 1, "t": 1.0, "number": number}
    return Message(message_id(), "alert", f"Alert {number}", f"Something happened ({number}).", body, time.time(),
                   attachments)  # fmt: skip


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver().start()
    yield server
    server.stop()


def email_config(smtp: SmtpServer, password: str) -> EmailChannelConfig:
    return EmailChannelConfig(id="ops", host="127.0.0.1", port=smtp.port, security="starttls",
                              ca_file=str(smtp.ca_file), username=smtp.user, sender="appliance@site.example",
                              to=("ops@site.example",), timeout_s=5, password=password)  # fmt: skip


def sender_for(transport: EmailTransport | WebhookTransport | SlackTransport, tmp_path: Path) -> ChannelSender:
    sender = ChannelSender(transport, Spool(tmp_path / f"{transport.name.replace('/', '-')}.sqlite3", LIMITS))
    sender.start()
    return sender


def test_an_email_goes_through_starttls_and_auth_with_its_snapshot(smtp: SmtpServer, tmp_path: Path) -> None:
    sender = sender_for(EmailTransport(email_config(smtp, smtp.password), "dev"), tmp_path)
    try:
        sent = message(1, attachments=(Attachment("cam.jpg", "image/jpeg", JPEG),))
        sender.put(sent)
        assert wait_until(lambda: sender.delivered == 1, 20), sender.problem
        [received] = smtp.messages
        assert received["Subject"] == "Alert 1" and received["To"] == "ops@site.example"
        assert smtp.ids() == [sent.id] and len(smtp.logins) == 1 and smtp.logins[0].endswith(":ok")
        [part] = list(received.iter_attachments())
        assert part.get_filename() == "cam.jpg" and part.get_content() == JPEG
        assert sender.spool.count == 0 and sender.stats.problem is None
    finally:
        sender.stop()


def test_a_refused_login_stops_the_channel_keeps_the_messages_and_says_it_once(
    smtp: SmtpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sender = sender_for(EmailTransport(email_config(smtp, "wrong-password-123"), "dev"), tmp_path)
    try:
        for number in range(3):
            sender.put(message(number))
        assert wait_until(lambda: sender.problem is not None, 20)
        attempts = len(smtp.logins)  # smtplib tries each mechanism the server offers, in one session
        time.sleep(1.5)
        assert sender.problem is not None and sender.problem.startswith("refused: the server refused the login")
        assert smtp.messages == [] and sender.spool.count == 3 and len(smtp.logins) == attempts
        said = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(said) == 1 and "wrong-password-123" not in caplog.text
    finally:
        sender.stop()


def test_a_webhook_away_gets_every_message_in_order_once_it_is_back(receiver: HttpReceiver, tmp_path: Path) -> None:
    config = WebhookChannelConfig(id="crm", url=receiver.url, ca_file=None, timeout_s=5, authorization="Bearer tok-123",
                                  raw_data=RawDataConfig(False, 10, "appliance"))  # fmt: skip
    sender = sender_for(WebhookTransport(config, "dev"), tmp_path)
    try:
        receiver.stop()
        sent = [message(number) for number in range(5)]
        for item in sent:
            sender.put(item)
        assert wait_until(lambda: sender.problem is not None, 20)
        assert sender.problem.startswith("unreachable") and sender.spool.count == 5
        receiver.start()
        assert wait_until(lambda: sender.delivered == 5, 30), sender.problem
        bodies = receiver.bodies()
        assert [b["id"] for b in bodies] == [m.id for m in sent] and [b["body"]["number"] for b in bodies] == list(
            range(5)
        )
        assert all(r["headers"]["Authorization"] == "Bearer tok-123" for r in receiver.requests)
        assert all(b["type"] == "notification" and b["kind"] == "alert" for b in bodies)
        assert sender.problem is None and sender.spool.count == 0
    finally:
        sender.stop()


@pytest.mark.parametrize(("status", "outcome"), [(400, "dropped"), (413, "dropped"), (401, "refused"), (404, "refused"),
                                                 (503, "retried"), (429, "retried")])  # fmt: skip
def test_a_webhook_reply_decides_between_retry_drop_and_refusal(
    receiver: HttpReceiver, tmp_path: Path, status: int, outcome: str
) -> None:
    config = WebhookChannelConfig(id="crm", url=receiver.url, ca_file=None, timeout_s=5,
                                  raw_data=RawDataConfig(False, 10, "appliance"))  # fmt: skip
    receiver.status = status
    sender = sender_for(WebhookTransport(config, "dev"), tmp_path)
    try:
        sender.put(message(1))
        assert wait_until(lambda: sender.rejected or sender.problem is not None, 20)
        if outcome == "dropped":
            assert sender.rejected == 1 and sender.spool.count == 0 and sender.stats.lost == 1
        else:
            assert sender.spool.count == 1 and sender.problem is not None
            assert sender.problem.startswith("refused" if outcome == "refused" else "unreachable"), sender.problem
    finally:
        sender.stop()


def test_slack_gets_the_text_and_is_told_of_attachments_it_cannot_carry(receiver: HttpReceiver, tmp_path: Path) -> None:
    sender = sender_for(SlackTransport(SlackChannelConfig(id="team", url=receiver.url, timeout_s=5), "dev"), tmp_path)
    try:
        sender.put(message(7, attachments=(Attachment("cam.jpg", "image/jpeg", JPEG),)))
        assert wait_until(lambda: sender.delivered == 1, 20)
        [body] = receiver.bodies()
        assert body["text"].startswith("*Alert 7*\nSomething happened (7).") and "cam.jpg" in body["text"]
    finally:
        sender.stop()


def test_a_held_back_message_waits_for_its_snapshot_and_survives_a_reopened_spool(
    receiver: HttpReceiver, tmp_path: Path
) -> None:
    config = WebhookChannelConfig(id="crm", url=receiver.url, ca_file=None, timeout_s=5,
                                  raw_data=RawDataConfig(False, 10, "appliance"))  # fmt: skip
    path = tmp_path / "held.sqlite3"
    spool = Spool(path, LIMITS)
    held = message(1)
    row = spool.put(held.kind, held.encode(), time.time(), not_before=time.time() + 60)
    spool.close()
    sender = ChannelSender(WebhookTransport(config, "dev"), Spool(path, LIMITS))  # as after a restart
    sender.start()
    try:
        time.sleep(1.5)
        assert receiver.requests == []
        sender.amend(row, held.with_attachment(Attachment("cam.jpg", "image/jpeg", JPEG)))
        assert wait_until(lambda: sender.delivered == 1, 20)
        [body] = receiver.bodies()
        assert body["id"] == held.id and [a["name"] for a in body["attachments"]] == ["cam.jpg"]
    finally:
        sender.stop()


def test_the_spool_drops_the_oldest_beyond_its_limits_and_counts_them(receiver: HttpReceiver, tmp_path: Path) -> None:
    receiver.stop()
    config = WebhookChannelConfig(id="crm", url=receiver.url, ca_file=None, timeout_s=5,
                                  raw_data=RawDataConfig(False, 10, "appliance"))  # fmt: skip
    spool = Spool(tmp_path / "small.sqlite3", SpoolLimits(max_messages=3, max_bytes=10 << 20, max_age_s=3600))
    sender = ChannelSender(WebhookTransport(config, "dev"), spool)
    sender.start()
    try:
        sender.put(message(0))
        assert wait_until(lambda: sender.problem is not None, 20)  # in its backoff now
        for number in range(1, 5):
            sender.put(message(number))
        receiver.start()
        assert wait_until(lambda: sender.delivered == 3, 30), sender.delivered
        assert [b["body"]["number"] for b in receiver.bodies()] == [2, 3, 4] and sender.stats.lost == 2
    finally:
        sender.stop()


def test_messages_round_trip_through_their_spool_form() -> None:
    original = message(3, attachments=(Attachment("a.png", "image/png", b"\x89PNG"),))
    assert Message.decode(original.encode()) == original
    assert json.loads(original.encode())["attachments"][0]["name"] == "a.png"


def test_notify_test_sends_through_a_channel_and_says_whether_it_arrived(
    receiver: HttpReceiver, tmp_path: Path
) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(f"device: {{id: dev}}\nnotifications:\n  webhooks:\n    - {{id: crm, url: '{receiver.url}'}}\n"
                       f"    - {{id: gone, url: 'http://127.0.0.1:{free_port()}/x'}}\n")  # fmt: skip
    done = run_cli("notify", "--profile", str(profile), "test", "crm")
    assert done.returncode == 0 and done.stdout.strip() == "webhook/crm: delivered", done.stderr
    [body] = receiver.bodies()
    assert body["kind"] == "test" and "this channel works" in body["text"]
    failed = run_cli("notify", "--profile", str(profile), "test", "gone")
    assert (
        failed.returncode == 1 and "webhook/gone: not delivered: webhook gone: ConnectionRefusedError" in failed.stderr
    )
    unknown = run_cli("notify", "--profile", str(profile), "test", "nope")
    assert unknown.returncode == 2 and "no channel 'nope' (channels: crm, gone)" in unknown.stderr
