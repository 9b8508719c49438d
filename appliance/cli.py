"""`appliance` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from appliance import __version__
from appliance.config import ProfileError, load_profile
from appliance.config.schema import schema_path
from appliance.config.secrets import REDACTOR
from appliance.config.yamlio import dump_plain

EXIT_OK = 0
EXIT_INVALID = 2
log = logging.getLogger("appliance")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.log_level)
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
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="least severe log level shown on stderr (default: %(default)s)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate",
        help="check profiles against the schema and the cross-field rules",
        description="Check each PROFILE; print every problem as FILE:LINE:COLUMN PATH: MESSAGE. "
        "Exit status 2 when any profile is invalid.",
    )
    validate.add_argument("profiles", nargs="+", type=Path, metavar="PROFILE")
    validate.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    validate.set_defaults(command=_validate)

    show = commands.add_parser(
        "show",
        help="print a profile fully resolved, defaults filled in, secrets masked",
        description="Print PROFILE after merging what it extends, resolving references and filling "
        "in defaults. Secrets are masked.",
    )
    show.add_argument("profile", type=Path, metavar="PROFILE")
    show.add_argument(
        "-f",
        "--format",
        choices=["yaml", "json"],
        default="yaml",
        help="output format (default: %(default)s)",
    )
    show.set_defaults(command=_show)

    schema = commands.add_parser(
        "schema",
        help="print the profile JSON Schema",
        description="Print the JSON Schema (2020-12) that profiles are validated against.",
    )
    schema.set_defaults(command=_schema)
    return parser


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(REDACTOR)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def _validate(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.profiles:
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
            profile = loaded.profile
            print(
                f"{path}: valid (device '{profile.device.id}', {profile.device.hardware}, "
                f"detector {profile.detector.backend}, {len(profile.cameras)} camera(s), "
                f"{len(profile.areas)} area(s))"
            )
    return status


def _show(args: argparse.Namespace) -> int:
    try:
        loaded = load_profile(args.profile)
    except ProfileError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    data = loaded.masked_data()
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        sys.stdout.write(dump_plain(data))
    return EXIT_OK


def _schema(_args: argparse.Namespace) -> int:
    sys.stdout.write(schema_path().read_text(encoding="utf-8"))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
