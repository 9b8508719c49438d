"""The history store: an index of the event log, one-minute rollups in SQLite.

The store is built only from the event log's files, read from where it last stopped (an offset
per file, committed in the same transaction as the rows they produced), so the store and the log
never disagree: a store that is lost, corrupt or from another version is set aside and rebuilt
by reading the log from the start, with the same result as when it was built live. SQLite, not
DuckDB: it is in Python's standard library on every device (no wheel to find for aarch64) and,
measured in bench/history_engines.py on this store's shape, as fast with a seventh of the memory.
One writer (the runtime, or `appliance history rebuild`), any number of readers (WAL)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.history.rollup import COLUMNS, HOUR_S, MINUTE_S, Deltas, EntityKey, MinuteRow, Rollup

log = logging.getLogger(__name__)
SCHEMA_VERSION = 2  # 2: the mask columns
STORE_NAME = "history.sqlite"
CHUNK_BYTES = 4 * 1024 * 1024  # read from a log file at a time
PROGRESS_LOG_INTERVAL_S = 10.0
DAY_S = 86400

_SCHEMA = f"""
CREATE TABLE entity (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, UNIQUE (kind, name));
CREATE TABLE minute (entity INTEGER NOT NULL, minute INTEGER NOT NULL,
                     {", ".join(f"{c} NUMERIC NOT NULL" for c in COLUMNS)}, PRIMARY KEY (entity, minute)) WITHOUT ROWID;
CREATE TABLE heat (camera INTEGER NOT NULL, hour INTEGER NOT NULL, cell INTEGER NOT NULL, people INTEGER NOT NULL,
                   violating INTEGER NOT NULL, PRIMARY KEY (camera, hour, cell)) WITHOUT ROWID;
CREATE TABLE visit (zone INTEGER NOT NULL, t REAL NOT NULL, dwell_s REAL NOT NULL);
CREATE INDEX visit_at ON visit (zone, t);
CREATE TABLE episode (camera INTEGER NOT NULL, t REAL NOT NULL, duration_s REAL NOT NULL, severity TEXT);
CREATE INDEX episode_at ON episode (camera, t);
CREATE TABLE source (path TEXT PRIMARY KEY, offset INTEGER NOT NULL);
CREATE TABLE cursor (stream TEXT NOT NULL, entity INTEGER NOT NULL, t REAL NOT NULL, PRIMARY KEY (stream, entity));
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_UPSERT_MINUTE = (
    f"INSERT INTO minute VALUES (?, ?, {', '.join('?' for _ in COLUMNS)}) ON CONFLICT (entity, minute) DO UPDATE SET "
    + ", ".join(
        f"{c} = max({c}, excluded.{c})" if c in MinuteRow.MAXIMA else f"{c} = {c} + excluded.{c}" for c in COLUMNS
    )
)
_UPSERT_HEAT = (
    "INSERT INTO heat VALUES (?, ?, ?, ?, ?) ON CONFLICT (camera, hour, cell) DO UPDATE SET "
    "people = people + excluded.people, violating = violating + excluded.violating"
)


class HistoryUnavailableError(Exception):
    """The store cannot be read: missing, corrupt, another version. Never served in that state."""


def store_path(data_dir: Path) -> Path:
    return data_dir / "history" / STORE_NAME


class HistoryWriter:
    """Keeps the store up with the event log in `events`. Holds a lock: one writer at a time."""

    def __init__(self, path: Path, events: Path) -> None:
        self.path, self.events = path, events
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise HistoryUnavailableError(f"another process is writing the history store {path}") from None
        self.db = self._open()
        self._load()
        self.skipped_lines = 0
        self._last_progress_log = time.monotonic()

    def _load(self) -> None:
        """Where the store stands: what it has read of each file, and the sample times it weighs from."""
        rows = self.db.execute("SELECT id, kind, name FROM entity").fetchall()
        self._entities: dict[EntityKey, int] = {(kind, name): id_ for id_, kind, name in rows}
        self._offsets: dict[str, int] = dict(self.db.execute("SELECT path, offset FROM source").fetchall())
        names = {id_: key for key, id_ in self._entities.items()}
        cursors = self.db.execute("SELECT stream, entity, t FROM cursor").fetchall()
        self.rollup = Rollup({(stream, names[entity]): t for stream, entity, t in cursors})

    @staticmethod
    def set_aside(path: Path) -> None:
        """Move the store at `path` out of the way (to be rebuilt), unless a writer holds it."""
        if not path.exists():
            return
        HistoryWriter(path, path.parent).close()  # takes the lock: refuses while the runtime writes
        log.warning("history: %s set aside as %s", path, _move_aside(path, "set-aside").name)

    def _open(self) -> sqlite3.Connection:
        if self.path.exists():
            problem = _check(self.path)
            if problem is None:
                return _connect(self.path)
            aside = _move_aside(self.path, "unusable")
            log.error("history: %s %s; set aside as %s, rebuilding it from the event log", self.path, problem,
                      aside.name)  # fmt: skip
        else:
            log.info("history: no store at %s yet; building it from the event log", self.path)
        db = _connect(self.path)
        with db:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return db

    def behind_bytes(self) -> int:
        """What the event log holds that the store has not read yet."""
        return sum(max(0, size - self._offsets.get(name, 0)) for name, size in self._log_files())

    def catch_up(self, max_lines: int = 50_000) -> bool:
        """Read at most `max_lines` new lines of the log into the store; True when none is left."""
        lines = 0
        files = self._log_files()
        for name in set(self._offsets) - {name for name, _ in files}:
            del self._offsets[name]  # pruned from the log; its rows stay
        for name, size in files:
            while lines < max_lines and (read := self._read_chunk(name, size, max_lines - lines)):
                lines += read
            if lines >= max_lines:
                self.commit()
                self._log_progress()
                return False
        self.commit()
        return True

    def _read_chunk(self, name: str, size: int, max_lines: int) -> int:
        """Read whole lines of `name` from where the store stopped; how many (0: nothing new)."""
        offset = self._offsets.get(name, 0)
        if offset == size:
            return 0
        if size < offset:
            log.warning("history: %s is shorter than what was read of it; reading only what is added", name)
            self._offsets[name] = size
            return 0
        with (self.events / name).open("rb") as stream:
            stream.seek(offset)
            data = stream.read(min(size - offset, CHUNK_BYTES))
        lines = data.split(b"\n")[:-1][:max_lines]  # whole lines only: the last may be half written
        if not lines and len(data) == CHUNK_BYTES:
            log.warning("history: %s has a line over %d bytes at %d; skipped", name, CHUNK_BYTES, offset)
            self._offsets[name] = offset + len(data)
            return 1
        camera = name.split("/", 1)[0]
        for line in lines:
            self._add(camera, line)
        self._offsets[name] = offset + sum(len(line) + 1 for line in lines)
        return len(lines)

    def _add(self, stream: str, line: bytes) -> None:
        try:
            self.rollup.add(stream, json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError):
            self.skipped_lines += 1
            if self.skipped_lines in (1, 10, 100, 1000) or self.skipped_lines % 10000 == 0:
                log.warning("history: %d line(s) of the event log skipped, not event records", self.skipped_lines)

    def commit(self) -> None:
        """Write what was read, with where it was read to; on failure, forget both and read again."""
        deltas = self.rollup.take()
        try:
            self._commit(deltas)
        except sqlite3.Error:
            self._load()
            raise

    def _commit(self, deltas: Deltas) -> None:
        with self.db:
            self._write(deltas)
            self.db.executemany("INSERT OR REPLACE INTO source VALUES (?, ?)", self._offsets.items())
            self.db.execute("DELETE FROM source WHERE path NOT IN (SELECT value FROM json_each(?))",
                            (json.dumps(list(self._offsets)),))  # fmt: skip
            self.db.execute("DELETE FROM cursor")
            self.db.executemany(
                "INSERT INTO cursor VALUES (?, ?, ?)",
                [(stream, self._entity(key), t) for (stream, key), t in self.rollup.last_sample.items()],
            )

    def _write(self, deltas: Deltas) -> None:
        self.db.executemany(
            _UPSERT_MINUTE,
            [
                (self._entity(key), minute, *(getattr(row, c) for c in COLUMNS))
                for (key, minute), row in deltas.minutes.items()
            ],
        )
        self.db.executemany(
            _UPSERT_HEAT,
            [(self._entity(("camera", camera)), hour, cell, people, violating)
             for (camera, hour, cell), (people, violating) in deltas.heat.items()],
        )  # fmt: skip
        self.db.executemany("INSERT INTO visit VALUES (?, ?, ?)",
                            [(self._entity(("zone", v.zone)), v.left, v.dwell_s) for v in deltas.visits])  # fmt: skip
        self.db.executemany(
            "INSERT INTO episode VALUES (?, ?, ?, ?)",
            [(self._entity(("camera", e.camera)), e.end, e.duration_s, e.severity) for e in deltas.episodes],
        )

    def _entity(self, key: EntityKey) -> int:
        if key not in self._entities:
            cursor = self.db.execute("INSERT INTO entity (kind, name) VALUES (?, ?)", key)
            self._entities[key] = int(cursor.lastrowid or 0)
        return self._entities[key]

    def prune(self, *, retention_days: int, max_bytes: int, now: float | None = None) -> None:
        """Drop what is older than `retention_days`, then the oldest days beyond `max_bytes`."""
        cutoff = (now if now is not None else time.time()) - retention_days * DAY_S
        self._drop_before(cutoff)
        while self.used_bytes() > max_bytes:
            oldest = self.db.execute("SELECT min(minute) FROM minute").fetchone()[0]
            if oldest is None:
                break
            log.info("history: store over %d MB; dropping its oldest day", max_bytes // (1024 * 1024))
            self._drop_before(oldest * MINUTE_S + DAY_S)
        self.db.execute("PRAGMA incremental_vacuum")

    def _drop_before(self, t: float) -> None:
        with self.db:
            self.db.execute("DELETE FROM minute WHERE minute < ?", (int(t // MINUTE_S),))
            self.db.execute("DELETE FROM heat WHERE hour < ?", (int(t // HOUR_S),))
            self.db.execute("DELETE FROM visit WHERE t < ?", (t,))
            self.db.execute("DELETE FROM episode WHERE t < ?", (t,))

    def used_bytes(self) -> int:
        pages = (
            self.db.execute("PRAGMA page_count").fetchone()[0] - self.db.execute("PRAGMA freelist_count").fetchone()[0]
        )
        return int(pages * self.db.execute("PRAGMA page_size").fetchone()[0])

    def close(self) -> None:
        self.commit()
        self.db.close()
        os.close(self._lock)

    def _log_files(self) -> list[tuple[str, int]]:
        files = []
        with contextlib.suppress(OSError):
            for path in sorted(self.events.glob("*/*.jsonl")):
                with contextlib.suppress(OSError):
                    files.append((path.relative_to(self.events).as_posix(), path.stat().st_size))
        return files

    def _log_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress_log >= PROGRESS_LOG_INTERVAL_S:
            self._last_progress_log = now
            log.info("history: reading the event log, %.1f MB left", self.behind_bytes() / 1e6)


@dataclass(frozen=True)
class Entity:
    kind: str
    name: str


class HistoryReader:
    """Read-only queries; every failure to read is HistoryUnavailableError, with the reason."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            raise HistoryUnavailableError(f"no history store at {path} yet: the runtime builds it from the event log")
        if (problem := _check(path, quick=False)) is not None:
            raise HistoryUnavailableError(f"the history store {path} {problem}; the runtime rebuilds it when it starts")
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self.db
        except sqlite3.DatabaseError as error:
            raise HistoryUnavailableError(f"the history store {self.path} cannot be read: {error}") from error

    def entities(self) -> list[Entity]:
        with self._reading() as db:
            return [
                Entity(kind, name) for kind, name in db.execute("SELECT kind, name FROM entity ORDER BY kind, name")
            ]

    def minutes(self, entity: Entity, start: float, end: float) -> list[tuple[int, MinuteRow]]:
        """The entity's minute rows from `start` (inclusive) to `end` (exclusive), Unix seconds."""
        with self._reading() as db:
            rows = db.execute(
                f"SELECT minute, {', '.join(COLUMNS)} FROM minute WHERE entity = (SELECT id FROM entity WHERE kind = ? "
                "AND name = ?) AND minute >= ? AND minute < ? ORDER BY minute",
                (entity.kind, entity.name, _first_minute(start), _first_minute(end)),
            ).fetchall()
        return [(row[0], MinuteRow(**dict(zip(COLUMNS, row[1:], strict=True)))) for row in rows]

    def visits(self, zone: str, start: float, end: float) -> list[tuple[float, float]]:
        """(left, dwell_s) of the visits of `zone` (camera/zone) that ended in [start, end)."""
        return self._timed("SELECT t, dwell_s FROM visit", "zone", zone, start, end)

    def episodes(self, camera: str, start: float, end: float) -> list[tuple[float, float, str | None]]:
        """(end, duration_s, severity) of the violation episodes of `camera` that ended in [start, end)."""
        return self._timed("SELECT t, duration_s, severity FROM episode", "camera", camera, start, end)

    def _timed(self, select: str, kind: str, name: str, start: float, end: float) -> list[Any]:
        column = "zone" if kind == "zone" else "camera"
        with self._reading() as db:
            return db.execute(
                f"{select} WHERE {column} = (SELECT id FROM entity WHERE kind = ? AND name = ?) AND t >= ? AND t < ? "
                "ORDER BY t",
                (kind, name, start, end),
            ).fetchall()

    def span(self) -> tuple[float | None, float | None]:
        """The start of the first minute and the end of the last the store holds."""
        with self._reading() as db:
            first, last = db.execute("SELECT min(minute), max(minute) FROM minute").fetchone()
        return (None, None) if first is None else (first * MINUTE_S, (last + 1) * MINUTE_S)

    def heat(self, camera: str, start: float, end: float) -> list[tuple[int, int, int]]:
        """(cell, people, violating) summed over the hours from `start` to `end`."""
        with self._reading() as db:
            return db.execute(
                "SELECT cell, sum(people), sum(violating) FROM heat WHERE camera = (SELECT id FROM entity WHERE "
                "kind = 'camera' AND name = ?) AND hour >= ? AND hour < ? GROUP BY cell",
                (camera, int(start // HOUR_S), -(-int(end) // HOUR_S)),
            ).fetchall()


def _move_aside(path: Path, label: str) -> Path:
    """Rename the store to `<name>.<label>-<time>`, dropping its WAL files; the new name."""
    aside = path.with_name(f"{path.name}.{label}-{time.strftime('%Y%m%dT%H%M%S')}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return aside


def _first_minute(t: float) -> int:
    return -(-int(t) // MINUTE_S)  # the minutes that begin at or after t


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def _check(path: Path, *, quick: bool = True) -> str | None:
    """Why the store at `path` cannot be used, or None."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                return f"has schema version {version}, not {SCHEMA_VERSION}"
            if quick and (result := db.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
                return f"is corrupt ({result})"
        finally:
            db.close()
    except sqlite3.DatabaseError as error:
        return f"is corrupt ({error})"
    return None
