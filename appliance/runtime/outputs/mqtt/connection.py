"""The connection to the broker: paho-mqtt on a thread of its own, reconnecting with a capped
backoff, reporting what happens as messages for the output's thread.

paho's own reconnect loop hides why a connection failed; here each attempt is a plain `connect`
that raises with the reason (refused, a certificate the CA does not sign, a name that does not
resolve), so a wrong setting gives one clear log line and a status, not silence or a loop of
tracebacks. Nothing here blocks the caller: `publish` only hands the message to paho."""

from __future__ import annotations

import contextlib
import logging
import queue
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from appliance.config.model import MqttConfig

log = logging.getLogger(__name__)
BACKOFF_FIRST_S, BACKOFF_MAX_S = 1.0, 60.0
MAX_INFLIGHT = 100  # QoS-1 messages awaiting the broker's acknowledgement
PROTOCOLS = {"3.1.1": MQTTProtocolVersion.MQTTv311, "5": MQTTProtocolVersion.MQTTv5}


@dataclass(frozen=True, slots=True)
class Connected:
    pass


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Acknowledged:
    mid: int


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    retained: bool = False  # a retained message the broker replayed, not one just sent


Notice = Connected | Disconnected | Acknowledged | Received


class Connection:
    """One broker session at a time; `notices` carries what happened, in order."""

    def __init__(self, config: MqttConfig, client_id: str, will_topic: str) -> None:
        self.config = config
        self.notices: queue.SimpleQueue[Notice] = queue.SimpleQueue()
        self.connected = False
        self.problem: str | None = "not connected yet"
        self._stopping = threading.Event()
        self._session_worked = False
        self._client = self._make_client(client_id, will_topic)
        self._thread = threading.Thread(target=self._run, name="mqtt-connection", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def start(self) -> None:
        self._thread.start()

    def publish(self, topic: str, payload: bytes | str, qos: int, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self._client.publish(topic, payload, qos, retain)

    def subscribe(self, topics: tuple[str, ...]) -> None:
        self._client.subscribe([(topic, 1) for topic in topics])

    def stop(self, last_words: tuple[str, str] | None, timeout: float) -> None:
        """Publish `last_words` (topic, payload; retained) if connected, then disconnect."""
        self._stopping.set()
        if last_words is not None and self.connected:
            info = self._client.publish(*last_words, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # the connection went first
                info.wait_for_publish(timeout)
        self._client.disconnect()
        self._thread.join(timeout)

    def _make_client(self, client_id: str, will_topic: str) -> mqtt.Client:
        config = self.config
        protocol = PROTOCOLS[config.protocol]
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=True if protocol == MQTTProtocolVersion.MQTTv311 else None,
            reconnect_on_failure=False,  # `_run` reconnects, and says why each attempt failed
        )
        client.will_set(will_topic, "offline", qos=1, retain=True)
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.tls.enabled:
            client.tls_set(ca_certs=config.tls.ca_file, certfile=config.tls.cert_file, keyfile=config.tls.key_file)
            client.tls_insecure_set(config.tls.insecure)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _run(self) -> None:
        backoff = BACKOFF_FIRST_S
        while not self._stopping.is_set():
            self._session_worked = False
            self._session()
            if self._session_worked:
                backoff = BACKOFF_FIRST_S
            if self._stopping.wait(backoff):
                return
            backoff = min(BACKOFF_MAX_S, backoff * 2)

    def _session(self) -> None:
        """Connect, and serve the connection until it ends."""
        try:
            self._client.connect(self.config.host, self.config.port, self.config.keepalive_s)
        except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
            self._report(f"cannot connect to {self.address}: {_reason(error)}")
            return
        self._client.loop_forever()
        if self.connected:  # ended without a DISCONNECT (the socket failed)
            self._set_disconnected("connection lost")

    def _report(self, problem: str) -> None:
        """Log a problem once, not on every retry."""
        if problem != self.problem:
            log.warning("mqtt: %s; retrying with backoff up to %.0f s", problem, BACKOFF_MAX_S)
        self.problem = problem

    def _on_connect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Properties | None
    ) -> None:
        if reason.is_failure:
            self._report(f"the broker at {self.address} refused the connection: {reason}")
            return
        if self.problem is not None:
            log.info("mqtt: connected to %s", self.address)
        self.connected, self.problem, self._session_worked = True, None, True
        self.notices.put(Connected())

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Properties | None
    ) -> None:
        if self.connected:
            self._set_disconnected("disconnected" if self._stopping.is_set() else f"connection lost ({reason})")

    def _set_disconnected(self, why: str) -> None:
        self.connected = False
        if not self._stopping.is_set():
            self._report(f"{why} from {self.address}")
        self.notices.put(Disconnected(why))

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: ReasonCode, _properties: Properties
    ) -> None:
        self.notices.put(Acknowledged(mid))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.notices.put(Received(message.topic, bytes(message.payload), bool(message.retain)))


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        why = error.verify_message or error.reason
        return f"TLS: the broker's certificate does not verify ({why}); check mqtt.tls.ca_file"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
