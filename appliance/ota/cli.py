"""`appliance ota`: keys, bundles, and the applier run by hand or by the systemd .path unit.

Each action imports what it needs when it runs, so `appliance --help` stays quick."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.cli_profile import add_profile_argument

if TYPE_CHECKING:
    from appliance.config import LoadedProfile

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_ota_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ota = commands.add_parser(
        "ota",
        help="signed config and model updates: keys, bundles, status",
        description="Make signing keys and signed bundles, check a bundle as the device would, apply the "
        "bundles waiting in the inbox, and show what is installed. See docs/ota.md.",
    )
    actions = ota.add_subparsers(title="actions", metavar="ACTION", required=True)
    keygen = actions.add_parser("keygen", help="make an Ed25519 signing key pair",
                                description="Write PREFIX.key (private, mode 0600) and PREFIX.pub; put the .pub "
                                "file in the device's ota.trusted_keys.")  # fmt: skip
    keygen.add_argument("prefix", type=Path, metavar="PREFIX", help="writes PREFIX.key and PREFIX.pub")
    keygen.set_defaults(command=_keygen)

    pack_ = actions.add_parser("pack", help="make a signed bundle from a profile and/or model files",
                               description="Make a bundle: --profile for a config update, --model for a model "
                               "update (the first file is the one the detector loads; an OpenVINO .xml then its "
                               ".bin), or both.")  # fmt: skip
    pack_.add_argument("--key", type=Path, required=True, help="the private key file (from keygen)")
    pack_.add_argument("--version", type=int, required=True, help="the update's version: above the installed one")
    pack_.add_argument("--profile", type=Path, help="the new profile (its relative paths are the device's)")
    pack_.add_argument("--model", type=Path, action="append", default=[], help="a model file (repeat for several)")
    pack_.add_argument("--detector", type=json.loads, default={},
                       help='more detector settings for the model, as JSON, e.g. \'{"backend": "onnxruntime", '
                            '"model": {"architecture": "yolox"}}\'')  # fmt: skip
    pack_.add_argument("--hardware", default="*", help="the device.hardware it is for (default: any)")
    pack_.add_argument("--device", default="*", help="the device.id it is for (default: any)")
    pack_.add_argument("--expires-days", type=float, default=30.0, help="valid this long (default: %(default)s)")
    pack_.add_argument("--min-appliance-version", default="", help="default: this version")
    pack_.add_argument("--description", default="", help="release notes shown in the status")
    pack_.add_argument("--out", type=Path, required=True, help="the bundle to write")
    pack_.set_defaults(command=_pack)

    verify = actions.add_parser("verify", help="check a bundle offline with the device's checks",
                                description="Check BUNDLE against PROFILE exactly as the device would before it "
                                "installs it (signature, files, target, expiry, version, the new profile, the "
                                "model on a frame); nothing is changed. Exit status 2 when it would be refused.",
                                )  # fmt: skip
    add_profile_argument(verify)
    verify.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle to check")
    verify.set_defaults(command=_with_profile(_verify))

    apply = actions.add_parser("apply", help="apply the bundles waiting in the inbox (when no runtime does)",
                               description="Finish or undo an interrupted update, then apply each complete bundle "
                               "in the inbox. When the runtime is running with ota.enabled it applies bundles "
                               "itself, and this exits at once.")  # fmt: skip
    add_profile_argument(apply)
    apply.set_defaults(command=_with_profile(_apply))

    status = actions.add_parser("status", help="the installed slot and version, the last result, the history",
                                description="Show the committed slot, the installed version, an update in "
                                "progress and the history.")  # fmt: skip
    add_profile_argument(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(command=_with_profile(_status))


def _with_profile(command: Callable[[argparse.Namespace, LoadedProfile], int]) -> Callable[[argparse.Namespace], int]:
    """`command` given the loaded --profile; an invalid one is refused with status 2."""

    def run(args: argparse.Namespace) -> int:
        from appliance.config import ProfileError, load_profile

        try:
            loaded = load_profile(args.profile)
        except ProfileError as error:
            print(error, file=sys.stderr)
            return EXIT_BAD_INPUT
        return command(args, loaded)

    return run


def _keygen(args: argparse.Namespace) -> int:
    from appliance.ota import keys

    private, public = args.prefix.with_name(f"{args.prefix.name}.key"), args.prefix.with_name(f"{args.prefix.name}.pub")
    try:
        key = keys.generate(private, public)
    except FileExistsError:
        print(f"{private} exists already; not overwritten", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {private} (keep it off the device) and {public}; key id {keys.short_id(key)}")
    return EXIT_OK


def _pack(args: argparse.Namespace) -> int:
    from appliance.config import ProfileError, load_profile
    from appliance.ota import keys
    from appliance.ota.pack import BundleSpec, detector_problems, pack
    from appliance.ota.rejection import BundleError

    if not args.profile and not args.model:
        print("give --profile, --model or both", file=sys.stderr)
        return EXIT_BAD_INPUT
    problems = detector_problems(args.detector)
    if args.profile:
        try:
            load_profile(args.profile)
        except ProfileError as error:
            problems += [str(issue) for issue in error.issues]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"{args.out}: not packed; the device would refuse it", file=sys.stderr)
        return EXIT_BAD_INPUT
    spec = BundleSpec(version=args.version, key=args.key, profile=args.profile, model_files=tuple(args.model),
                      detector=args.detector, hardware=args.hardware, device=args.device,
                      expires_days=args.expires_days, min_appliance_version=args.min_appliance_version,
                      description=args.description)  # fmt: skip
    try:
        pack(spec, args.out)
    except (keys.KeyFileError, BundleError, ValueError, OSError) as error:
        print(f"cannot pack: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {args.out}")
    return EXIT_OK


def _verify(args: argparse.Namespace, loaded: LoadedProfile) -> int:
    from appliance.ota.applier import Applier, FileHost
    from appliance.ota.rejection import BundleError

    with tempfile.TemporaryDirectory(prefix="appliance-ota-") as scratch:
        applier = Applier(args.profile, loaded.profile.ota, FileHost(args.profile, running=loaded))
        payload = Path(scratch) / "payload"
        payload.mkdir()
        try:
            candidate = applier.verify(args.bundle, loaded, payload)
        except BundleError as error:
            print(f"{args.bundle}: refused: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
    manifest = candidate.manifest
    print(f"{args.bundle}: ok: version {manifest.version}, {manifest.kind}, {len(manifest.files)} file(s), "
          f"expires {manifest.expires.isoformat()}")  # fmt: skip
    return EXIT_OK


def _apply(args: argparse.Namespace, loaded: LoadedProfile) -> int:
    from appliance.config import load_profile
    from appliance.ota.applier import Applier, FileHost
    from appliance.runtime.preflight import DataDirBusyError, DataDirLock

    lock = DataDirLock(Path(loaded.profile.ota.state_dir))
    Path(loaded.profile.ota.state_dir).mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire()
    except DataDirBusyError:
        print("the runtime is running and applies bundles itself; nothing to do", file=sys.stderr)
        return EXIT_OK
    try:
        applier = Applier(args.profile, loaded.profile.ota, FileHost(args.profile))
        results = [result for result in [applier.recover()] if result]
        for bundle in applier.waiting():
            results.append(applier.process(bundle, load_profile(args.profile)))
    finally:
        lock.release()
    for result in results:
        print(f"{result.bundle}: {result.outcome.replace('_', ' ')}"
              + (f" ({result.reason}: {result.message})" if result.reason else ""))  # fmt: skip
    if not results:
        print("no bundles waiting")
    return EXIT_OK


def _status(args: argparse.Namespace, loaded: LoadedProfile) -> int:
    from appliance.ota.applier import Applier, FileHost

    status = Applier(args.profile, loaded.profile.ota, FileHost(args.profile)).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    print(f"slot: {status['slot'] or 'none (the profile as set up)'}; installed version {status['installed_version']}")
    if status["in_progress"]:
        print(f"in progress: {status['in_progress']}")
    for item in status["history"][:10]:
        when = datetime.fromtimestamp(item["at"], UTC).isoformat(timespec="seconds")
        reason = f"({item['reason']}) " if item.get("reason") else ""
        version = f"version {item['version']}" if item.get("version") else "version unknown"
        print(f"{when}  {item['bundle']}  {version}  {item['outcome'].replace('_', ' ')}: {reason}{item['message']}")
    return EXIT_OK
