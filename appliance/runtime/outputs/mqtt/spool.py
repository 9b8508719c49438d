"""The MQTT store-and-forward queue: events wait here, on disk, until the broker has them.

Every QoS-1 event goes in before it is published and leaves when the broker acknowledges it, so
an event survives a broker outage, a restart and a kill -9 of the appliance, and is delivered in
the order it was made. SQLite in WAL mode with `synchronous=NORMAL`: a committed row survives the
process dying at any point; a power cut may lose the last few. The queue is bounded by count,
bytes and age; beyond them the oldest rows go first, and are counted.

The spool also keeps two small facts across restarts: the next message sequence number and the
Home Assistant discovery topics last published (so entities removed while the appliance was off
are removed when it starts)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

SEQUENCE_BLOCK = 1000  # sequence numbers reserved on disk at a time


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    row: int
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SpoolLimits:
    max_messages: int
    max_bytes: int
    max_age_s: float


class Spool:
    """Owned by one thread (the MQTT output's)."""

    def __init__(self, path: Path, limits: SpoolLimits) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.limits = limits
        self.dropped = 0  # rows removed by the limits since start
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS messages (row INTEGER PRIMARY KEY AUTOINCREMENT, "
            "topic TEXT NOT NULL, payload BLOB NOT NULL, queued_at REAL NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.count = self.bytes = 0
        self._recount()
        self._next_sequence = int(self._meta("sequence_reserved") or 0)
        self._sequence_reserved = self._next_sequence

    def put(self, topic: str, payload: bytes, now: float) -> None:
        """Queue a message; then drop the oldest beyond the limits."""
        self._db.execute("INSERT INTO messages (topic, payload, queued_at) VALUES (?, ?, ?)", (topic, payload, now))
        self.count += 1
        self.bytes += len(payload)
        self._enforce_limits(now)

    def after(self, row: int, limit: int) -> list[SpooledMessage]:
        """Up to `limit` messages queued after `row`, oldest first."""
        rows = self._db.execute(
            "SELECT row, topic, payload FROM messages WHERE row > ? ORDER BY row LIMIT ?", (row, limit)
        ).fetchall()
        return [SpooledMessage(r, t, p) for r, t, p in rows]

    def remove(self, rows: list[int]) -> None:
        """Forget delivered messages."""
        if not rows:
            return
        with self._db:
            for row in rows:
                for (size,) in self._db.execute("DELETE FROM messages WHERE row = ? RETURNING length(payload)", (row,)):
                    self.count, self.bytes = self.count - 1, self.bytes - size

    def next_sequence(self) -> int:
        """A sequence number never handed out before, across restarts."""
        if self._next_sequence >= self._sequence_reserved:
            self._sequence_reserved = self._next_sequence + SEQUENCE_BLOCK
            self._set_meta("sequence_reserved", str(self._sequence_reserved))
        self._next_sequence += 1
        return self._next_sequence

    def discovery_topics(self) -> set[str]:
        return set(json.loads(self._meta("discovery_topics") or "[]"))

    def set_discovery_topics(self, topics: set[str]) -> None:
        self._set_meta("discovery_topics", json.dumps(sorted(topics)))

    def close(self) -> None:
        self._db.close()

    def _enforce_limits(self, now: float) -> None:
        dropped = self._db.execute("DELETE FROM messages WHERE queued_at < ?", (now - self.limits.max_age_s,)).rowcount
        if dropped:
            self._recount()
        while self.count > self.limits.max_messages or self.bytes > self.limits.max_bytes:
            row, size = self._db.execute("SELECT row, length(payload) FROM messages ORDER BY row LIMIT 1").fetchone()
            self._db.execute("DELETE FROM messages WHERE row = ?", (row,))
            self.count, self.bytes, dropped = self.count - 1, self.bytes - size, dropped + 1
        self.dropped += dropped

    def _recount(self) -> None:
        count, size = self._db.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM messages").fetchone()
        self.count, self.bytes = int(count), int(size)

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
