"""SQLite against DuckDB for the history store's shape: the one-minute rollups of 30 days of
8 cameras, 32 zones, 8 lines and 2 areas, written in daily batches as the store does, then a
day's hourly and a month's daily aggregate of one entity. Each engine runs in its own process,
whose peak memory is reported.

    .tools/bin/uv venv /tmp/duck && .tools/bin/uv pip install --python /tmp/duck/bin/python duckdb pandas
    /tmp/duck/bin/python bench/history_engines.py

(DuckDB is not a dependency of the appliance; this benchmark is why.)
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DAYS, ENTITIES = 30, 8 + 32 + 8 + 2
COLUMNS = ("samples", "people_sum", "people_max", "violating_sum", "violating_max", "seconds", "violating_person_s",
           "over_s", "crossed_in", "crossed_out", "alerts", "loitering", "threshold")  # fmt: skip
DAY_SQL = ("SELECT minute / 60 AS hour, sum(people_sum) / sum(samples), max(people_max) FROM minute "
           "WHERE entity = 3 AND minute >= ? AND minute < ? GROUP BY hour ORDER BY hour")  # fmt: skip
REPEATS = 5


def day_rows(day: int) -> Iterator[tuple[Any, ...]]:
    generator = random.Random(day)
    for entity in range(ENTITIES):
        for minute in range(day * 1440, (day + 1) * 1440):
            people = generator.randint(0, 10)
            yield (entity, minute, 60, people * 60.0, people + 2, people * 20.0, people, 59.0, people * 19.0, 0.0,
                   generator.randint(0, 2), generator.randint(0, 2), 0, 0, 6)  # fmt: skip


def run_engine(engine: str, folder: Path) -> dict[str, float]:
    create = (f"CREATE TABLE minute (entity INTEGER, minute INTEGER, {', '.join(c + ' DOUBLE' for c in COLUMNS)}, "
              "PRIMARY KEY (entity, minute))")  # fmt: skip
    insert = f"INSERT INTO minute VALUES ({', '.join('?' for _ in range(len(COLUMNS) + 2))})"
    if engine == "sqlite":
        import sqlite3

        path = folder / "store.sqlite"
        db: Any = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(create + " WITHOUT ROWID")

        def write(rows: list[tuple[Any, ...]]) -> None:
            with db:
                db.executemany(insert, rows)

        def query(lo: int, hi: int) -> object:
            return db.execute(DAY_SQL, (lo, hi)).fetchall()
    else:
        import duckdb

        path = folder / "store.duckdb"
        db = duckdb.connect(str(path))
        db.execute(create)

        import pandas

        def write(rows: list[tuple[Any, ...]]) -> None:  # its bulk path: a data frame, not executemany
            frame = pandas.DataFrame(rows, columns=["entity", "minute", *COLUMNS])  # noqa: F841 - read by name
            db.execute("INSERT INTO minute SELECT * FROM frame")

        def query(lo: int, hi: int) -> object:
            return db.execute(DAY_SQL, (lo, hi)).fetchall()

    began = time.perf_counter()
    for day in range(DAYS):
        write(list(day_rows(day)))
    written = time.perf_counter() - began
    results = {"write 30 days (s)": written}
    timed: dict[str, Callable[[], object]] = {
        "a day, hourly (ms)": lambda: query(10 * 1440, 11 * 1440),
        "30 days by hour (ms)": lambda: query(0, DAYS * 1440),
    }
    for name, action in timed.items():
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
        results[name] = statistics.median(times) * 1000
    db.close()
    size = sum(p.stat().st_size for p in folder.iterdir())
    results["on disk (MB)"] = size / 1e6
    results["peak memory (MB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--engine":
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(run_engine(sys.argv[2], Path(folder))))
        return 0
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Rows: {DAYS} days x {ENTITIES} entities x 1440 minutes = {DAYS * ENTITIES * 1440}\n")
    results = {}
    for engine in ("sqlite", "duckdb"):
        child = subprocess.run([sys.executable, __file__, "--engine", engine], capture_output=True, text=True,
                               check=True)  # fmt: skip
        results[engine] = json.loads(child.stdout)
    print("| figure | SQLite | DuckDB |\n|---|---|---|")
    for name in results["sqlite"]:
        print(f"| {name} | {results['sqlite'][name]:.1f} | {results['duckdb'][name]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
