"""The profile argument every command takes the same way: `appliance CMD PROFILE` or
`appliance CMD --profile PROFILE`."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "the device profile (YAML), given as PROFILE or --profile PROFILE"


def add_profile_argument(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    """PROFILE (when `positional`) and --profile, of which one is required."""
    if positional:
        parser.add_argument("profile_positional", nargs="?", type=Path, metavar="PROFILE", help=HELP)
    parser.add_argument("--profile", type=Path, help=HELP)
    parser.set_defaults(profile_parser=parser)


def settle_profile(args: argparse.Namespace) -> None:
    """Put the profile given either way into `args.profile`; a usage error (exit 2) when none
    or two different ones were given."""
    parser: argparse.ArgumentParser | None = getattr(args, "profile_parser", None)
    if parser is None:
        return
    positional: Path | None = getattr(args, "profile_positional", None)
    if positional is not None and args.profile is not None and positional != args.profile:
        parser.error(f"two profiles given: {positional} and --profile {args.profile}")
    args.profile = args.profile or positional
    if args.profile is None:
        parser.error("a profile is required: give PROFILE or --profile PROFILE")
