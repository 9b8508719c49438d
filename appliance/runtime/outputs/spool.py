"""The store-and-forward queue of the outputs that deliver somewhere (MQTT, notification channels,
S3 uploads): messages wait here, on disk, until the other end has them.

A message goes in before it is sent and leaves when the other end acknowledges it, so it
survives an outage, a restart and a kill -9 of the appliance, and is delivered in the order it
was made. SQLite in WAL mode with `synchronous=NORMAL`: a committed row survives the process
dying at any point; a power cut may lose the last few. The queue is bounded by count, bytes and
age; beyond them the oldest rows go first, and are counted.

A message may be held back until a time (`not_before`): a notification waits a moment for the
snapshot it will carry, and is still on disk if the appliance dies meanwhile. One connection,
guarded by a lock, so the thread that queues and the thread that sends may share the spool."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    row: int
    topic: str
    payload: bytes
    not_before: float = 0.0


@dataclass(frozen=True, slots=True)
class SpoolLimits:
    max_messages: int
    max_bytes: int
    max_age_s: float


class Spool:
    def __init__(self, path: Path, limits: SpoolLimits) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.limits = limits
        self.dropped = 0  # rows removed by the limits since start
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS messages (row INTEGER PRIMARY KEY AUTOINCREMENT, "
            "topic TEXT NOT NULL, payload BLOB NOT NULL, queued_at REAL NOT NULL, not_before REAL NOT NULL DEFAULT 0)"
        )
        columns = {name for _, name, *_ in self._db.execute("PRAGMA table_info(messages)")}
        if "not_before" not in columns:  # a spool written before messages could be held back
            self._db.execute("ALTER TABLE messages ADD COLUMN not_before REAL NOT NULL DEFAULT 0")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.count = self.bytes = 0
        self._recount()

    def put(self, topic: str, payload: bytes, now: float, *, not_before: float = 0.0) -> int:
        """Queue a message, then drop the oldest beyond the limits; the message's row."""
        with self._lock:
            row = self._db.execute(
                "INSERT INTO messages (topic, payload, queued_at, not_before) VALUES (?, ?, ?, ?)",
                (topic, payload, now, not_before),
            ).lastrowid
            self.count += 1
            self.bytes += len(payload)
            self._enforce_limits(now)
        assert row is not None
        return row

    def amend(self, row: int, payload: bytes, *, not_before: float = 0.0) -> bool:
        """Replace a queued message's payload and release time; False when it is gone (sent or dropped)."""
        with self._lock:
            found = self._db.execute("SELECT length(payload) FROM messages WHERE row = ?", (row,)).fetchone()
            if found is None:
                return False
            update = "UPDATE messages SET payload = ?, not_before = ? WHERE row = ?"
            self._db.execute(update, (payload, not_before, row))
            self.bytes += len(payload) - int(found[0])
            return True

    def after(self, row: int, limit: int) -> list[SpooledMessage]:
        """Up to `limit` messages queued after `row`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT row, topic, payload, not_before FROM messages WHERE row > ? ORDER BY row LIMIT ?", (row, limit)
            ).fetchall()
        return [SpooledMessage(*row) for row in rows]

    def oldest(self) -> SpooledMessage | None:
        found = self.after(0, 1)
        return found[0] if found else None

    def remove(self, rows: list[int]) -> None:
        """Forget delivered messages."""
        if not rows:
            return
        with self._lock, self._db:
            for row in rows:
                for (size,) in self._db.execute("DELETE FROM messages WHERE row = ? RETURNING length(payload)", (row,)):
                    self.count, self.bytes = self.count - 1, self.bytes - size

    def meta(self, key: str) -> str | None:
        """A small fact kept across restarts beside the messages."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
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
