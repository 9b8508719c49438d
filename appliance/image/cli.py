"""`appliance build --profile P [--format oci|nix]`: validate the profile, then build its image
and print where it is. An invalid profile stops it before anything is built (exit status 2)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.buildinfo import build_info
from appliance.cli_profile import add_profile_argument
from appliance.image.base import DEFAULT_MIRROR, BaseError, base_image, ensure_base
from appliance.image.docker_config import drop_build_container
from appliance.image.engine import engine_options
from appliance.image.hardware import TARGETS, ImageTarget

if TYPE_CHECKING:
    from appliance.config import LoadedProfile

SOURCE = Path(__file__).resolve().parents[2]  # the checkout the appliance runs from
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
BUILD_TIMEOUT_S = 3600


def add_build_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = commands.add_parser(
        "build",
        help="build the image of a profile (NixOS, or OCI with podman)",
        description="Validate PROFILE, then build its image: a NixOS system image with nix (--format nix), or an "
        "OCI image with podman (--format oci, the fallback; jetson-nano only has this one). Prints where the "
        "image is. Two builds of the same profile from the same commit give the same image. docs/image.md.",
    )
    add_profile_argument(build)
    build.add_argument("--format", choices=["oci", "nix"], default="oci", help="default: %(default)s")
    build.add_argument("--out", type=Path, default=Path("build"), help="build folder (default: %(default)s)")
    build.add_argument("--tag", help="OCI: the image's name (default: localhost/appliance-<device id>:<version>)")
    build.add_argument("--base", help="OCI: build on this image instead of the hardware's base")
    build.add_argument("--mirror", default=DEFAULT_MIRROR,
                       help="OCI: Debian mirror for the debootstrap base; one pinned to a date "
                            "(snapshot.debian.org) gives the same base everywhere (default: %(default)s)")  # fmt: skip
    build.add_argument("--context-only", action="store_true",
                       help="OCI: write the build context (Containerfile and all it copies) and stop, "
                            "to build it elsewhere (docs/image.md)")  # fmt: skip
    build.add_argument("--ca-bundle", type=Path, default=_default_ca_bundle(),
                       help="OCI: CA certificates pip trusts while building, never put in the image "
                            "(default: $PIP_CERT or $SSL_CERT_FILE, when set)")  # fmt: skip
    build.set_defaults(command=_build)


def _build(args: argparse.Namespace) -> int:
    from appliance.config import ProfileError, load_profile  # here, so that `appliance --help` stays quick
    from appliance.image.context import ContextError

    try:
        loaded = load_profile(args.profile)
    except ProfileError as error:
        print(error, file=sys.stderr)
        print(f"{args.profile}: invalid; nothing was built", file=sys.stderr)
        return EXIT_BAD_INPUT
    target = TARGETS[loaded.profile.device.hardware]
    if args.ca_bundle is not None and not args.ca_bundle.is_file():
        print(f"--ca-bundle {args.ca_bundle}: not a readable file", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not (SOURCE / "oci" / "requirements").is_dir():
        print(f"appliance build needs the appliance's source checkout; {SOURCE} is not one", file=sys.stderr)
        return EXIT_FAILED
    try:
        return _nix(args, loaded, target) if args.format == "nix" else _oci(args, loaded, target)
    except (BaseError, ContextError) as error:
        print(f"build failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except subprocess.CalledProcessError as error:
        print(f"build failed: {Path(error.cmd[0]).name} exited with status {error.returncode}; its own messages "
              "above say why. Where they name cgroups or the OCI runtime, this machine cannot run containers as "
              "set up: install runc (apt-get install runc), which appliance build then uses, or see docs/image.md",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED


def _oci(args: argparse.Namespace, loaded: LoadedProfile, target: ImageTarget) -> int:
    from appliance.image.context import write_context

    info = build_info(loaded, SOURCE)
    context = args.out.resolve() / f"{loaded.name}-oci"
    if args.context_only:
        base = args.base or target.base or base_image(target, args.mirror)
        write_context(context, SOURCE, loaded, target, info, base)
        print(json.dumps({"context": str(context), "base": base, "revision": info.revision,
                          "source_date_epoch": info.source_date_epoch}, indent=2))  # fmt: skip
        return EXIT_OK
    engine = shutil.which("podman") or shutil.which("docker")
    if engine is None:
        print("neither podman nor docker is installed (apt-get install podman)", file=sys.stderr)
        return EXIT_FAILED
    base = args.base or target.base or ensure_base(target, engine, args.mirror, _say)
    write_context(context, SOURCE, loaded, target, info, base)
    tag = args.tag or f"localhost/appliance-{loaded.profile.device.id}:{info.version}"
    epoch = str(info.source_date_epoch)
    options = engine_options(engine)
    if options.note:
        _say(options.note)
    command = [engine, *options.global_options, "build", *options.build_options,
               "--format", "docker", "--timestamp", epoch, "--build-arg", f"BASE={base}",
               "--build-arg", f"SOURCE_DATE_EPOCH={epoch}", "--platform", target.platform, "--network", "host",
               "--layers=false", "--pull=never" if not target.base else "--pull=missing", "-t", tag,
               "--secret", f"id=ca-bundle,src={args.ca_bundle or os.devnull}",
               "-f", str(context / "Containerfile"), str(context)]  # fmt: skip
    _say(f"building {tag} on {base} (revision {info.revision}, SOURCE_DATE_EPOCH {epoch})")
    subprocess.run(command, check=True, stdout=sys.stderr, timeout=BUILD_TIMEOUT_S)
    drop_build_container(engine, tag)
    inspect = [engine, "image", "inspect", "--format", "{{.Id}} {{.Digest}}", tag]
    image_id, digest = subprocess.run(inspect, check=True, capture_output=True, text=True).stdout.split()
    print(json.dumps({"image": tag, "id": f"sha256:{image_id.removeprefix('sha256:')}", "digest": digest,
                      "context": str(context), "revision": info.revision}, indent=2))  # fmt: skip
    return EXIT_OK


def _say(message: str) -> None:
    print(f"appliance build: {message}", file=sys.stderr, flush=True)


def _default_ca_bundle() -> Path | None:
    path = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    return Path(path) if path and Path(path).is_file() else None


def _nix(args: argparse.Namespace, loaded: LoadedProfile, target: ImageTarget) -> int:
    if target.nix_system is None:
        print(f"NixOS does not serve {target.hardware}; build it with --format oci (docs/image.md)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if shutil.which("nix") is None:
        print("nix is not installed (https://nixos.org/download)", file=sys.stderr)
        return EXIT_FAILED
    folder = args.out.resolve() / f"{loaded.name}-nix"
    folder.mkdir(parents=True, exist_ok=True)
    rendered = folder / "profile.json"
    rendered.write_text(json.dumps(loaded.masked_data(), indent=2, sort_keys=True) + "\n")
    info = build_info(loaded, SOURCE)
    (folder / "build-info.json").write_text(info.to_json())
    info_file = folder / "build-info.json"
    arguments = (f"hardware = {json.dumps(target.hardware)}; rendered = /. + {json.dumps(str(rendered))}; "
                 f"buildInfo = /. + {json.dumps(str(info_file))};")  # fmt: skip
    expression = f'(builtins.getFlake "path:{SOURCE}").lib.image {{ {arguments} }}'
    command = ["nix", "--extra-experimental-features", "nix-command flakes", "build", "--impure", "--expr",
               expression, "--out-link", str(folder / "result"), "--print-out-paths"]  # fmt: skip
    _say(f"nix build of {loaded.name} for {target.nix_system}")
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, timeout=BUILD_TIMEOUT_S)
    print(json.dumps({"image": done.stdout.strip(), "link": str(folder / "result")}, indent=2))
    return EXIT_OK
