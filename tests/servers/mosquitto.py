"""A real mosquitto broker on a free loopback port, and a paho subscriber that records what it
receives. The broker can be stopped and started again on the same port (an outage)."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.servers import free_port, wait_for_port, wait_until

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@dataclass(frozen=True)
class BrokerTls:
    ca_file: Path
    cert_file: Path
    key_file: Path


class Mosquitto:
    """`mosquitto -c <own config>`: anonymous on loopback, or with a password file and TLS."""

    def __init__(self, folder: Path, *, users: dict[str, str] | None = None, tls: BrokerTls | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"user {getpass.getuser()}",  # as root, mosquitto would switch to 'mosquitto', who cannot read these files
            # mosquitto's default of 1000 queued messages per client silently drops QoS-1 messages
            # to a slow subscriber; the tests count every message
            "max_queued_messages 1000000",
            "max_inflight_messages 0",
            "persistence false",
            f"log_dest file {folder / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if users:
            passwords = folder / "passwords"
            passwords.write_text("".join(f"{user}:{password}\n" for user, password in users.items()))
            passwords.chmod(0o600)
            subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if tls:  # clients must show a certificate the same CA signed
            lines += [f"cafile {tls.ca_file}", f"certfile {tls.cert_file}", f"keyfile {tls.key_file}",
                      "require_certificate true"]  # fmt: skip
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    received_at: float


class Subscriber:
    """A paho client recording every message on `topics` (QoS 1), reconnecting after outages."""

    def __init__(self, port: int, topics: tuple[str, ...] = ("#",), **auth: str) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self.topics = topics
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-subscriber-{free_port()}")
        if auth:
            self.client.username_pw_set(auth["username"], auth["password"])
        self.client.on_connect = lambda client, *_: client.subscribe([(t, 1) for t in self.topics])
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Message(message.topic, bytes(message.payload), bool(message.retain), time.time()))

    def on(self, topic: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if mqtt.topic_matches_sub(topic, m.topic)]

    def last(self, topic: str) -> Message | None:
        found = self.on(topic)
        return found[-1] if found else None

    def wait_for(self, topic: str, count: int = 1, timeout: float = 30) -> list[Message]:
        wait_until(lambda: len(self.on(topic)) >= count, timeout, interval=0.05)
        return self.on(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


__all__ = ["BrokerTls", "Message", "Mosquitto", "Subscriber", "make_certificates"]


def make_certificates(folder: Path, name: str = "ca") -> tuple[BrokerTls, Path, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it
    (openssl CLI). Returns the broker's files and the client's certificate and key."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    ca_key, ca_cert = folder / f"{name}.key", folder / f"{name}.crt"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_cert),
            "-days", "2", "-subj", f"/CN=test {name}")  # fmt: skip
    issued = {}
    for role, extension in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "")):
        key, request, cert = folder / f"{role}.key", folder / f"{role}.csr", folder / f"{role}.crt"
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request),
                "-subj", f"/CN=test {role}")  # fmt: skip
        extra = ["-extfile", str(_write(folder / f"{role}.ext", extension))] if extension else []
        openssl("x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
                "-out", str(cert), "-days", "2", *extra)  # fmt: skip
        issued[role] = (cert, key)
    server_cert, server_key = issued["server"]
    client_cert, client_key = issued["client"]
    return BrokerTls(ca_cert, server_cert, server_key), client_cert, client_key


def _write(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path
