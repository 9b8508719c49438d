"""`appliance backup list|now|restore`: the S3 backups of the profile's device from its shell."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.cli_profile import add_profile_argument

if TYPE_CHECKING:
    from appliance.runtime.outputs.s3.backup import Bucket

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_backup_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = commands.add_parser(
        "backup", help="S3 backups: list, now, restore",
        description="The incremental backups of the event log and the history store in the profile's S3 bucket "
        "(s3.backup). Credentials come from the profile, the environment or ~/.aws.",
    )  # fmt: skip
    add_profile_argument(backup, positional=False)
    actions = backup.add_subparsers(title="actions", metavar="ACTION", required=True)
    actions.add_parser("list", help="the backups in the bucket, oldest first").set_defaults(command=_list)
    actions.add_parser("now", help="back up now (the appliance may be running)").set_defaults(command=_now)
    restore = actions.add_parser(
        "restore", help="restore a backup into an empty folder",
        description="Restore a backup (the newest unless --manifest names one) into an empty or new folder, every "
        "chunk and file checked against its manifest; point storage.data_dir at it to use it.",
    )  # fmt: skip
    restore.add_argument("--into", type=Path, required=True, help="an empty or new folder")
    restore.add_argument("--manifest", help="the backup to restore, as 'backup list' names it")
    restore.set_defaults(command=_restore)


def _list(args: argparse.Namespace) -> int:
    def run(bucket: Bucket) -> None:
        names = bucket.manifests()
        for name in names:
            manifest = bucket.read_manifest(name)
            size = sum(int(f.get("size", 0)) for f in manifest.get("files", []))
            created = datetime.fromtimestamp(float(manifest.get("created", 0)), UTC).isoformat(timespec="seconds")
            print(f"{name}  {created}  {len(manifest.get('files', []))} file(s)  {size / 1e6:.1f} MB")
        print(f"{len(names)} backup(s) in s3://{bucket.bucket}/{bucket.root}")

    return _with_bucket(args, run)


def _now(args: argparse.Namespace) -> int:
    from appliance.runtime.outputs.s3.backup import back_up

    def run(bucket: Bucket) -> None:
        data_dir = Path(args.loaded.profile.storage.data_dir)
        result = back_up(bucket, data_dir, data_dir / "s3" / "backup-cache.json",
                         device_id=args.loaded.profile.device.id, keep=args.loaded.profile.s3.backup.keep)  # fmt: skip
        print(f"backed up {result.files} file(s), {result.bytes / 1e6:.1f} MB, as {result.manifest}: "
              f"{result.chunks_uploaded} new chunk(s), {result.bytes_uploaded / 1e6:.1f} MB uploaded "
              f"in {result.seconds:.1f} s")  # fmt: skip

    return _with_bucket(args, run)


def _restore(args: argparse.Namespace) -> int:
    from appliance.runtime.outputs.s3.backup import restore

    def progress(done: int, total: int) -> None:
        print(f"\rrestoring: {done}/{total} file(s)", end="", file=sys.stderr, flush=True)

    def run(bucket: Bucket) -> None:
        result = restore(bucket, args.into, manifest=args.manifest, progress=progress)
        print(file=sys.stderr)
        print(f"restored {result.manifest}: {result.files} file(s), {result.bytes / 1e6:.1f} MB into {args.into}, "
              f"every chunk and file checked, in {result.seconds:.1f} s")  # fmt: skip

    return _with_bucket(args, run)


def _with_bucket(args: argparse.Namespace, run: Callable[[Bucket], None]) -> int:
    from appliance.config import ProfileError, load_profile
    from appliance.runtime.outputs.channels.s3 import UPLOAD_ERRORS, s3_client, s3_failure
    from appliance.runtime.outputs.s3.backup import BackupError

    try:
        args.loaded = load_profile(args.profile)
    except ProfileError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    config = args.loaded.profile.s3
    from appliance.runtime.outputs.s3.backup import Bucket, key_base

    bucket = Bucket(s3_client(config), config.bucket, key_base(config.prefix, args.loaded.profile.device.id))
    try:
        run(bucket)
    except BackupError as error:
        print(f"backup: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT if "empty folder" in str(error) else EXIT_FAILED
    except UPLOAD_ERRORS as error:
        print(f"backup: {s3_failure(error, config.bucket)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
