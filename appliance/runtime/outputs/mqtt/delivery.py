"""Events that must arrive: kept in the on-disk spool, published oldest first with at most
MAX_INFLIGHT unacknowledged, and removed from the spool once the broker acknowledges them.
What was in flight when a session ended is sent again by the next one (at least once)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time

from paho.mqtt.client import MQTT_ERR_SUCCESS

from appliance.runtime.outputs.mqtt.connection import MAX_INFLIGHT, Connection
from appliance.runtime.outputs.mqtt.spool import MqttSpool
from appliance.runtime.serialize import Json

log = logging.getLogger(__name__)


class Delivery:
    def __init__(self, spool: MqttSpool) -> None:
        self.spool = spool
        self.delivered = 0
        self._inflight: dict[int, int] = {}  # paho message id -> spool row
        self._acknowledged: list[int] = []  # spool rows, to remove
        self._last_sent_row = 0
        self._unspooled = self._lost_unspooled = 0  # events the spool could not keep: now, before

    @property
    def in_flight(self) -> bool:
        return bool(self._inflight)

    @property
    def lost(self) -> int:
        return self.spool.dropped + self._lost_unspooled + self._unspooled

    @property
    def problem(self) -> str | None:
        return "the spool cannot keep events (disk full?)" if self._unspooled else None

    def restart(self) -> None:
        """A session ended or began: send again from the oldest message kept."""
        self._inflight.clear()
        self._last_sent_row = 0

    def acknowledged(self, mid: int) -> None:
        if mid in self._inflight:
            self._acknowledged.append(self._inflight.pop(mid))

    def settle(self) -> None:
        """Remove what the broker acknowledged from the spool."""
        self.spool.remove(self._acknowledged)
        self.delivered += len(self._acknowledged)
        self._acknowledged.clear()

    def put(self, topic: str, body: Json) -> None:
        """Into the spool. One the spool cannot keep (a full disk) is counted as lost, and said
        once until the spool works again."""
        try:
            self.spool.put(topic, self.payload(body), time.time())
        except sqlite3.Error as error:
            if not self._unspooled:
                log.error("mqtt: cannot keep events in the spool (%s); they are counted as lost until it can", error)
            self._unspooled += 1
            return
        if self._unspooled:
            log.warning("mqtt: spooling again; %d event(s) lost meanwhile", self._unspooled)
            self._lost_unspooled, self._unspooled = self._lost_unspooled + self._unspooled, 0

    def payload(self, body: Json) -> bytes:
        """The JSON sent, numbered: `seq` grows by one for each message, across restarts."""
        numbered = {"type": body["type"], "v": body["v"], "seq": self.spool.next_sequence(), **body}
        return json.dumps(numbered, separators=(",", ":"), allow_nan=False).encode()

    def forward(self, connection: Connection, qos: int) -> None:
        """Publish spooled messages, in order, while fewer than MAX_INFLIGHT await their answer."""
        room = MAX_INFLIGHT - len(self._inflight)
        if not connection.connected or room <= 0:
            return
        for message in self.spool.after(self._last_sent_row, room):
            info = connection.publish(message.topic, message.payload, qos=max(1, qos))
            if info.rc != MQTT_ERR_SUCCESS:
                return  # the connection is going; the next session sends it
            self._inflight[info.mid] = message.row
            self._last_sent_row = message.row

    def close(self) -> None:
        self.spool.close()
