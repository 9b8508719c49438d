"""The MQTT output's spool: the outputs' store-and-forward queue (outputs/spool.py) that also
keeps two small facts across restarts: the next message sequence number and the Home Assistant
discovery topics last published (so entities removed while the appliance was off are removed
when it starts)."""

from __future__ import annotations

import json
from pathlib import Path

from appliance.runtime.outputs.spool import Spool, SpoolLimits

SEQUENCE_BLOCK = 1000  # sequence numbers reserved on disk at a time


class MqttSpool(Spool):
    """Owned by one thread (the MQTT output's)."""

    def __init__(self, path: Path, limits: SpoolLimits) -> None:
        super().__init__(path, limits)
        self._next_sequence = int(self.meta("sequence_reserved") or 0)
        self._sequence_reserved = self._next_sequence

    def next_sequence(self) -> int:
        """A sequence number never handed out before, across restarts."""
        if self._next_sequence >= self._sequence_reserved:
            self._sequence_reserved = self._next_sequence + SEQUENCE_BLOCK
            self.set_meta("sequence_reserved", str(self._sequence_reserved))
        self._next_sequence += 1
        return self._next_sequence

    def discovery_topics(self) -> set[str]:
        return set(json.loads(self.meta("discovery_topics") or "[]"))

    def set_discovery_topics(self, topics: set[str]) -> None:
        self.set_meta("discovery_topics", json.dumps(sorted(topics)))
