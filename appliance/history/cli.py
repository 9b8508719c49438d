"""`appliance report`, `chart`, `heatmap` and `history`: the history store from the device's shell.

Each first brings the store up with the event log when no runtime is writing it (after a run in
historical mode, or with the appliance stopped); while one runs, it reads what the runtime has
stored, a few seconds behind."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from appliance.cli_profile import add_profile_argument
from appliance.history.reports import COLUMNS_BY_KIND, KINDS, PERIODS, parse_time, range_problem
from appliance.history.store import Entity, HistoryReader, HistoryUnavailableError, HistoryWriter, store_path

if TYPE_CHECKING:
    from appliance.config import LoadedProfile

EXIT_OK, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 0, 2, 1
DEFAULT_DAYS = {"hour": 0, "day": 6, "week": 27}  # how far back --from goes when not given


class UsageError(Exception):
    """A request the user must change: exit status 2."""


def add_history_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report", help="people, violations, crossings and dwell per hour, day or week",
        description="Report one camera, zone (CAMERA/ZONE), line (CAMERA/LINE) or area per hour, day or week of "
        "the site's time zone (device.timezone), from the history store.",
    )  # fmt: skip
    _add_common(report)
    report.add_argument("--every", choices=PERIODS, default="hour", help="the period of each row (default: hour)")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table", help="default: table")
    report.set_defaults(command=_report)

    chart = commands.add_parser("chart", help="a day's chart as PNG",
                                description="Draw one day of a camera, zone, line or area as a PNG.")  # fmt: skip
    add_profile_argument(chart)
    _add_entity(chart)
    chart.add_argument("--day", help="the local date (YYYY-MM-DD; default: today)")
    chart.add_argument("--output", type=Path, required=True, help="the PNG file to write")
    chart.set_defaults(command=_chart)

    heat = commands.add_parser(
        "heatmap", help="where people stood, as PNG",
        description="Draw where a camera's people stood (or stood too close) as a PNG.",
    )  # fmt: skip
    _add_common(heat, entities=False)
    heat.add_argument("--camera", required=True, help="the camera")
    heat.add_argument("--violations", action="store_true", help="only people in violation")
    heat.add_argument("--floor", action="store_true", help="on the floor in cm (a calibrated camera)")
    heat.add_argument("--output", type=Path, required=True, help="the PNG file to write")
    heat.set_defaults(command=_heatmap)

    history = commands.add_parser("history", help="the history store: status, rebuild",
                                  description="The history store behind reports, charts and heatmaps.")  # fmt: skip
    add_profile_argument(history, positional=False)
    actions = history.add_subparsers(title="actions", metavar="ACTION", required=True)
    actions.add_parser("status", help="what the store holds").set_defaults(command=_status)
    actions.add_parser(
        "rebuild", help="set the store aside and read the whole event log again",
        description="Rebuild the store from the event log (the appliance must be stopped).",
    ).set_defaults(command=_rebuild)  # fmt: skip


def _add_entity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    for kind in KINDS:
        form = "CAMERA/" + kind.upper() if kind in ("zone", "line") else kind.upper()
        group.add_argument(f"--{kind}", metavar=form, help=f"the {kind}")


def _add_common(parser: argparse.ArgumentParser, *, entities: bool = True) -> None:
    add_profile_argument(parser)
    if entities:
        _add_entity(parser)
    parser.add_argument("--from", dest="start", help="local date or ISO 8601 time (default: a span that fits --every)")
    parser.add_argument("--to", dest="end", help="local date or ISO 8601 time, not included (default: now)")


def _report(args: argparse.Namespace) -> int:
    from appliance.history.reports import periods, report

    def run(loaded: LoadedProfile, reader: HistoryReader) -> None:
        zone = _zone(loaded)
        entity = _entity(args, reader)
        start, end = _range(args, loaded, zone, args.every)
        rows = report(reader, entity, periods(start, end, args.every, zone))
        columns = ["start", "end", *COLUMNS_BY_KIND[entity.kind]]
        if args.format == "json":
            json.dump({"kind": entity.kind, "name": entity.name, "every": args.every, "timezone": zone.key,
                       "rows": rows}, sys.stdout, indent=2)  # fmt: skip
            print()
        elif args.format == "csv":
            writer = csv.DictWriter(sys.stdout, columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        else:
            _table(columns, rows)

    return _with_reader(args, run)


def _chart(args: argparse.Namespace) -> int:
    from appliance.history.charts import day_chart

    def run(loaded: LoadedProfile, reader: HistoryReader) -> None:
        zone = _zone(loaded)
        try:
            day = date.fromisoformat(args.day) if args.day else datetime.now(zone).date()
        except ValueError:
            raise UsageError(f"--day {args.day!r} is not a date (YYYY-MM-DD)") from None
        _write(args.output, day_chart(reader, _entity(args, reader), day, zone))

    return _with_reader(args, run)


def _heatmap(args: argparse.Namespace) -> int:
    from appliance.geometry import fit_homography
    from appliance.history.charts import heatmap

    def run(loaded: LoadedProfile, reader: HistoryReader) -> None:
        zone = _zone(loaded)
        start, end = _range(args, loaded, zone, "day")
        camera = next((c for c in loaded.profile.cameras if c.id == args.camera), None)
        floor = None
        if args.floor:
            points = camera.distance.calibration if camera else None
            if not points:
                raise UsageError(f"--floor: camera {args.camera!r} has no calibration in the profile")
            floor = fit_homography([p.image for p in points], [p.floor for p in points])
        _entity(argparse.Namespace(camera=args.camera), reader)
        _write(args.output, heatmap(reader, args.camera, start, end, violations=args.violations, floor=floor))

    return _with_reader(args, run)


def _status(args: argparse.Namespace) -> int:
    def run(loaded: LoadedProfile, reader: HistoryReader) -> None:
        entities = reader.entities()
        print(f"store: {reader.path} ({reader.path.stat().st_size / 1e6:.1f} MB)")
        for kind in KINDS:
            names = [e.name for e in entities if e.kind == kind]
            print(f"{kind}s: {', '.join(names) if names else '-'}")
        first, last = reader.span()
        zone = _zone(loaded)
        if first is not None and last is not None:
            shown = [datetime.fromtimestamp(t, zone).isoformat() for t in (first, last)]
            print(f"from {shown[0]} to {shown[1]}")

    return _with_reader(args, run)


def _rebuild(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if loaded is None:
        return EXIT_BAD_INPUT
    data_dir = Path(loaded.profile.storage.data_dir)
    path = store_path(data_dir)
    try:
        HistoryWriter.set_aside(path)
        _catch_up(path, data_dir / "events", required=True)
    except HistoryUnavailableError as error:
        print(f"history: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"history: rebuilt {path} from {data_dir / 'events'}")
    return EXIT_OK


def _with_reader(args: argparse.Namespace, run: Callable[[LoadedProfile, HistoryReader], None]) -> int:
    loaded = _load(args)
    if loaded is None:
        return EXIT_BAD_INPUT
    data_dir = Path(loaded.profile.storage.data_dir)
    try:
        _catch_up(store_path(data_dir), data_dir / "events", required=False)
        reader = HistoryReader(store_path(data_dir))
    except HistoryUnavailableError as error:
        print(f"history: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        run(loaded, reader)
    except UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    except HistoryUnavailableError as error:
        print(f"history: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        reader.close()
    return EXIT_OK


def _load(args: argparse.Namespace) -> LoadedProfile | None:
    """The profile, or None when it is invalid (said on stderr)."""
    from appliance.config import ProfileError, load_profile

    try:
        return load_profile(args.profile)
    except ProfileError as error:
        print(error, file=sys.stderr)
        return None


def _catch_up(path: Path, events: Path, *, required: bool) -> None:
    """Read what the store lacks of the event log, unless the runtime is writing it (then it
    does this itself; an error only when `required`)."""
    if not events.is_dir() and not path.exists():
        raise HistoryUnavailableError(f"no event log at {events} and no history store at {path}")
    try:
        writer = HistoryWriter(path, events)
    except HistoryUnavailableError:
        if required:
            raise
        return
    try:
        total = writer.behind_bytes()
        while not writer.catch_up():
            if sys.stderr.isatty():
                print(f"\rhistory: reading the event log, {100 - 100 * writer.behind_bytes() / total:.0f} %",
                      end="", file=sys.stderr)  # fmt: skip
        if sys.stderr.isatty() and total:
            print(file=sys.stderr)
    finally:
        writer.close()


def _zone(loaded: LoadedProfile) -> ZoneInfo:
    return ZoneInfo(loaded.profile.device.timezone)


def _entity(args: argparse.Namespace, reader: HistoryReader) -> Entity:
    kind = next(kind for kind in KINDS if getattr(args, kind, None))
    entity = Entity(kind, getattr(args, kind))
    known = [e.name for e in reader.entities() if e.kind == kind]
    if entity.name not in known:
        raise UsageError(f"no {kind} {entity.name!r} in the history; it has: {', '.join(known) or 'none'}")
    return entity


def _range(args: argparse.Namespace, loaded: LoadedProfile, zone: ZoneInfo, every: str) -> tuple[datetime, datetime]:
    try:
        now = datetime.now(zone)
        end = parse_time(args.end, zone) if args.end else now
        today = datetime(now.year, now.month, now.day, tzinfo=zone)
        start = parse_time(args.start, zone) if args.start else today - timedelta(days=DEFAULT_DAYS[every])
    except ValueError as error:
        raise UsageError(f"--from/--to: {error}") from None
    if problem := range_problem(start, end, loaded.profile.storage.history.max_query_days):
        raise UsageError(problem)
    return start, end


def _table(columns: list[str], rows: list[dict[str, object]]) -> None:
    cells = [[("-" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    for row in [columns, *cells]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    print(f"wrote {path} ({len(data) / 1024:.0f} KB)")
