"""`appliance` command line. Each command imports what it needs when it runs (the profile
loader, the runtime, the OTA stack), so `appliance --help` and `appliance validate` stay quick;
bench/cli.py measures both."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from appliance import __version__, models
from appliance.api.certs import add_certs_command
from appliance.api.users_cli import add_users_commands
from appliance.cli_profile import HELP as PROFILE_HELP
from appliance.cli_profile import add_profile_argument, settle_profile
from appliance.files import regular_file_problem
from appliance.history.cli import add_history_commands
from appliance.image.cli import add_build_command
from appliance.ota.cli import add_ota_commands
from appliance.runtime.outputs.notifications.cli import add_notify_commands
from appliance.runtime.outputs.s3.cli import add_backup_commands

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
log = logging.getLogger("appliance")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settle_profile(args)
    from appliance.logs import configure_logging

    configure_logging(args.log_level or "warning")
    command: Callable[[argparse.Namespace], int] = args.command
    return command(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appliance",
        description="Social distancing and occupancy appliance: profiles, runtime and maintenance.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="least severe log level shown on stderr (default: warning; for run, the profile's logging.level)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate",
        help="check profiles against the schema and the cross-field rules",
        description="Check each PROFILE; print every problem as FILE:LINE:COLUMN PATH: MESSAGE. "
        "Exit status 2 when any profile is invalid.",
    )
    validate.add_argument("profiles", nargs="*", type=Path, metavar="PROFILE", help="a profile (YAML) to check")
    validate.add_argument("--profile", dest="more_profiles", action="append", type=Path, default=[],
                          metavar="PROFILE", help="a profile to check (as PROFILE; may be repeated)")  # fmt: skip
    validate.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    validate.set_defaults(command=_validate)

    show = commands.add_parser(
        "show",
        help="print a profile fully resolved, defaults filled in, secrets masked",
        description="Print PROFILE after merging what it extends, resolving references and filling "
        "in defaults. Secrets are masked.",
    )
    add_profile_argument(show)
    show.add_argument(
        "-f",
        "--format",
        choices=["yaml", "json"],
        default="yaml",
        help="output format (default: %(default)s)",
    )
    show.set_defaults(command=_show)

    run = commands.add_parser(
        "run",
        help="run the appliance: every enabled camera, supervised",
        description="Run one supervised worker per enabled camera until SIGTERM. SIGHUP or a change of the "
        "profile file applies the new profile camera by camera. With --input, process a recorded video as "
        "fast as possible with the first camera's settings, then exit.",
    )
    add_profile_argument(run)
    run.add_argument("--input", type=Path, help="historical mode: a recorded video to process")
    run.add_argument("--start", type=_iso_time, default=None, metavar="TIME",
                     help="historical mode: when the video's first frame was taken, ISO 8601 with its UTC offset "
                          "(e.g. 2026-12-01T09:00+01:00); default: the video's own time, from 1970")  # fmt: skip
    run.set_defaults(command=_run)

    _add_models_commands(commands)
    add_users_commands(commands)
    add_certs_command(commands)
    add_history_commands(commands)
    add_ota_commands(commands)
    add_backup_commands(commands)
    add_notify_commands(commands)
    add_build_command(commands)

    schema = commands.add_parser(
        "schema",
        help="print the profile JSON Schema",
        description="Print the JSON Schema (2020-12) that profiles are validated against.",
    )
    schema.set_defaults(command=_schema)
    return parser


def _add_models_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models_command = commands.add_parser(
        "models",
        help="list and fetch known detector models",
        description="Known permissively licensed models, fetched from their official location into the model cache.",
    )
    actions = models_command.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list the known models", description="List the known models.")
    listing.add_argument("--catalog", type=Path, help="a JSON catalog of this site's own models")
    listing.set_defaults(command=_models_list)
    fetch = actions.add_parser(
        "fetch",
        help="download models into the cache, verifying their pinned digests",
        description="Download each NAME into CACHE/NAME/, verifying the digest its publisher pinned. "
        "Nothing unverified is ever left in the cache.",
    )
    fetch.add_argument("names", nargs="+", metavar="NAME", help="a model of `appliance models list`")
    fetch.add_argument("--cache", type=Path, default=models.DEFAULT_CACHE, help="model cache (default: %(default)s)")
    fetch.add_argument("--mirror", help="base URL serving MIRROR/NAME/FILE instead of the official location")
    fetch.add_argument("--catalog", type=Path, help="a JSON catalog of this site's own models")
    fetch.set_defaults(command=_models_fetch)


def _validate(args: argparse.Namespace) -> int:
    from appliance.config import ProfileError, load_profile

    paths = [*args.profiles, *args.more_profiles]
    if not paths:
        print(f"appliance validate: no profile given; {PROFILE_HELP}", file=sys.stderr)
        return EXIT_INVALID
    status = EXIT_OK
    for path in paths:
        try:
            loaded = load_profile(path)
        except ProfileError as error:
            status = EXIT_INVALID
            for issue in error.issues:
                print(issue, file=sys.stderr)
            count = len(error.issues)
            print(f"{path}: invalid ({count} problem{'s' if count != 1 else ''})", file=sys.stderr)
            continue
        if not args.quiet:
            profile, device_id = loaded.profile, loaded.masked_data()["device"]["id"]
            print(
                f"{path}: valid (device '{device_id}', {profile.device.hardware}, "
                f"detector {profile.detector.backend}, {len(profile.cameras)} camera(s), "
                f"{len(profile.areas)} area(s))"
            )
    return status


def _show(args: argparse.Namespace) -> int:
    from appliance.config import ProfileError, load_profile
    from appliance.config.yamlio import dump_plain

    try:
        loaded = load_profile(args.profile)
    except ProfileError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    data = loaded.masked_data()
    if args.format == "json":
        print(json.dumps(data, indent=2, allow_nan=False))
    else:
        sys.stdout.write(dump_plain(data))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from appliance.app import build_runtime
    from appliance.config import ProfileError

    try:
        runtime = build_runtime(args.profile, input_file=args.input, input_start=args.start, log_level=args.log_level)
    except ProfileError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    if args.input is not None and (problem := regular_file_problem(args.input)):
        print(f"{args.input}: {problem}", file=sys.stderr)
        return EXIT_INVALID
    if args.input is not None and not runtime.loaded.profile.cameras:
        print(f"{args.profile}: --input uses the first camera's settings, and the profile has none", file=sys.stderr)
        return EXIT_INVALID
    return runtime.run()


def _iso_time(text: str) -> float:
    """Unix time of an ISO 8601 time that says its offset."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z or +HH:MM)")
    return moment.timestamp()


def _catalog(path: Path | None) -> dict[str, models.KnownModel]:
    return models.load_catalog(path) if path else models.CATALOG


def _models_list(args: argparse.Namespace) -> int:
    try:
        catalog = _catalog(args.catalog)
    except models.FetchError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    for model in catalog.values():
        size = sum(f.size for f in model.files) / 1e6
        print(f"{model.name:32} {model.backend:12} {size:6.1f} MB  {model.license:12} {model.description}")
    return EXIT_OK


def _models_fetch(args: argparse.Namespace) -> int:
    try:
        catalog = _catalog(args.catalog)
    except models.FetchError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    try:
        unknown = [name for name in args.names if name not in catalog]
        if unknown:
            print(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(catalog)}", file=sys.stderr)
            return EXIT_INVALID
        for name in args.names:
            model = catalog[name]
            path = models.fetch(model, args.cache, mirror=args.mirror, progress=_Progress())
            print(
                f"{name}: {path}\n  detector: {{backend: {model.backend}, class_id: {model.class_id}, "
                f"model: {{path: {path}, sha256: {models.sha256_of(path)}}}}}"
            )
    except models.FetchError as error:
        print(error, file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


class _Progress:
    """Download progress on stderr, every tenth."""

    def __init__(self) -> None:
        self.shown: dict[str, int] = {}

    def __call__(self, name: str, received: int, total: int) -> None:
        tenth = received * 10 // max(total, 1)
        if tenth > self.shown.get(name, -1):
            self.shown[name] = tenth
            print(f"  {name}: {min(tenth * 10, 100)}% of {total / 1e6:.1f} MB", file=sys.stderr, flush=True)


def _schema(_args: argparse.Namespace) -> int:
    from appliance.config.schema import schema_path

    sys.stdout.write(schema_path().read_text(encoding="utf-8"))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
