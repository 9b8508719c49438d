"""Appliance images. What this machine can check (docs/image.md says what it cannot): every Nix
file parses; the NixOS module and its profile-to-settings function evaluate with Debian's nix and
a small `lib` (no nixpkgs here); the flake's pins; the OCI requirements match uv.lock; an invalid
profile fails the build with the validator's message before anything is built; and the x86 image,
built twice with podman on a debootstrap base, has the same id both times, and runs: it reads a
profile and a video mounted into it and answers /api/v1/health and /metrics."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from appliance.image.engine import cgroups_hybrid, engine_options
from tests.conftest import PETS_VIDEO, PROFILES, REPO
from tests.servers import free_port, wait_until

NIX_FILES = sorted([REPO / "flake.nix", *REPO.glob("nix/*.nix"), *REPO.glob("tests/nix/*.nix")])
TEST_LIB = REPO / "tests" / "nix" / "lib.nix"


def appliance(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})})  # fmt: skip


@pytest.mark.parametrize("path", NIX_FILES, ids=[str(p.relative_to(REPO)) for p in NIX_FILES])
def test_every_nix_file_parses(path: Path) -> None:
    parsed = subprocess.run(["nix-instantiate", "--parse", str(path)], capture_output=True, text=True, timeout=60)
    assert parsed.returncode == 0, parsed.stderr


def evaluate(profile: str, tmp_path: Path, expression: str) -> dict[str, Any]:
    """`expression` evaluated with nix (no nixpkgs: `lib` is tests/nix/lib.nix), given `profile`
    rendered by `appliance show --format json`."""
    source = tmp_path / "profile.yaml"
    source.write_text(profile)
    shown = appliance("show", "--format", "json", str(source))
    assert shown.returncode == 0, shown.stderr
    rendered = tmp_path / "profile.json"
    rendered.write_text(shown.stdout)
    bindings = f"lib = import {TEST_LIB}; profile = builtins.fromJSON (builtins.readFile {rendered});"
    command = ["nix-instantiate", "--readonly-mode", "--eval", "--strict", "--json", "--expr",
               f"let {bindings} in {expression}"]  # fmt: skip
    evaluated = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert evaluated.returncode == 0, evaluated.stderr
    return json.loads(evaluated.stdout)  # type: ignore[no-any-return]


def settings_of(profile: str, tmp_path: Path) -> dict[str, Any]:
    """nix/settings.nix applied to the rendered profile."""
    return evaluate(profile, tmp_path, f"import {REPO}/nix/settings.nix {{ inherit lib; }} profile")


def module_config(profile: str, tmp_path: Path) -> dict[str, Any]:
    """What nix/module.nix sets for the rendered profile, with stand-ins for the package and pkgs."""
    pkgs = '{ writeText = name: text: "/nix/store/stub-${name}"; coreutils = "/nix/store/stub-coreutils"; }'
    service = '{ enable = true; package = "/nix/store/stub-appliance"; inherit profile; buildInfo = null; }'
    module = f"import {REPO}/nix/module.nix {{ inherit lib; pkgs = {pkgs}; config.services.appliance = {service}; }}"
    return evaluate(profile, tmp_path, f"({module}).config")


def test_the_nixos_module_for_the_default_profile(tmp_path: Path) -> None:
    settings = settings_of(f"extends: {PROFILES / 'x86.yaml'}\n", tmp_path)
    assert settings["hardware"] == "x86" and settings["tcpPorts"] == [9110]  # metrics open, API on loopback
    assert settings["devices"] == [] and settings["groups"] == []
    assert settings["stateDirectories"] == ["appliance", "appliance/ota/inbox", "appliance/ota/state"]
    assert settings["model"] == {"directory": str(REPO / "models/person-detection-retail-0013/FP32"),
                                 "file": "person-detection-retail-0013.xml"}  # fmt: skip
    assert settings["ota"] == {"enable": False, "inbox": "/var/lib/appliance/ota/inbox"}  # no trusted key
    config = module_config(f"extends: {PROFILES / 'x86.yaml'}\n", tmp_path)
    service = config["systemd"]["services"]["appliance"]["serviceConfig"]
    assert (
        service["ExecStart"] == "/nix/store/stub-appliance/bin/appliance run --profile /var/lib/appliance/profile.json"
    )
    assert (service["Type"], service["WatchdogSec"], service["DynamicUser"], service["ProtectSystem"]) == (
        "notify", 30, True, "strict")  # fmt: skip
    assert service["DeviceAllow"] == [] and service["DevicePolicy"] == "closed"
    assert service["StateDirectory"] == ["appliance", "appliance/ota/inbox", "appliance/ota/state"]
    assert config["networking"]["firewall"]["allowedTCPPorts"] == [9110]
    assert config["services"]["mosquitto"]["listeners"][0]["port"] == 1883  # mqtt.host is localhost
    assert config["systemd"]["paths"]["appliance-ota"] == {}  # OTA off: no trusted key


def test_the_nixos_module_for_a_coral_with_a_usb_camera_a_local_broker_and_an_open_api(tmp_path: Path) -> None:
    (tmp_path / "signer.pub").write_text("-----BEGIN PUBLIC KEY-----\n")
    profile = f"""\
extends: {PROFILES / "coral.yaml"}
cameras:
  - {{id: door, source: /dev/video0}}
  - {{id: yard, source: /dev/video2, enabled: false}}
areas: []
mqtt: {{enabled: true, host: 127.0.0.1, port: 1884}}
api: {{listen: "0.0.0.0:8443", tls: {{cert_file: {tmp_path}/cert.pem, key_file: {tmp_path}/key.pem}}}}
metrics: {{listen: "127.0.0.1:9110"}}
storage: {{data_dir: /srv/appliance}}
ota: {{trusted_keys: [{tmp_path}/signer.pub]}}
"""
    settings = settings_of(profile, tmp_path)
    assert settings["tcpPorts"] == [8443]  # the API is open; metrics stay on loopback
    assert settings["devices"] == ["/dev/video0", "/dev/apex_0", "char-usb_device"]  # not the disabled camera
    assert settings["groups"] == ["video", "plugdev"]
    assert settings["localBroker"] == {"enable": True, "port": 1884}
    assert settings["readWritePaths"] == ["/srv/appliance"]  # the OTA folders are inside it
    assert settings["ota"] == {"enable": True, "inbox": "/srv/appliance/ota/inbox"}  # they follow data_dir
    assert settings["model"] is None  # fetched onto the device, not baked in
    config = module_config(profile, tmp_path)
    service = config["systemd"]["services"]["appliance"]["serviceConfig"]
    assert service["DeviceAllow"] == ["/dev/video0 rw", "/dev/apex_0 rw", "char-usb_device rw"]
    assert service["ReadWritePaths"] == ["/srv/appliance"] and service["SupplementaryGroups"] == ["video", "plugdev"]
    assert config["systemd"]["paths"]["appliance-ota"]["pathConfig"]["PathChanged"] == "/srv/appliance/ota/inbox"
    ota = config["systemd"]["services"]["appliance-ota"]["serviceConfig"]
    assert ota["ExecStart"].endswith("ota apply --profile /var/lib/appliance/profile.json") and ota["PrivateNetwork"]


def test_the_flake_pins_every_input() -> None:
    lock = json.loads((REPO / "flake.lock").read_text())
    flake = (REPO / "flake.nix").read_text()
    inputs = lock["nodes"]["root"]["inputs"]
    assert set(inputs) == set(re.findall(r"^    ([a-z0-9-]+)(?:\.url| = \{)", flake, flags=re.MULTILINE))
    for name in inputs.values():
        locked = lock["nodes"][name]["locked"]
        assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"]) and locked["narHash"].startswith("sha256-"), name
    assert lock["nodes"]["nixpkgs"]["original"]["ref"] == "nixos-25.05"


def test_the_image_requirements_are_those_of_uv_lock(tmp_path: Path) -> None:
    uv = REPO / ".tools" / "bin" / "uv"
    for name, extra in (("default", ()), ("edgetpu", ("--extra", "edgetpu")), ("tensorrt", ("--extra", "tensorrt"))):
        exported = subprocess.run([str(uv), "export", "--quiet", "--frozen", "--no-dev", "--no-emit-project",
                                   "--format", "requirements-txt", *extra], capture_output=True, text=True,
                                  cwd=REPO, timeout=120)  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        committed = (REPO / "oci" / "requirements" / f"{name}.txt").read_text()
        assert _pins(exported.stdout) == _pins(committed), f"run scripts/export-requirements.sh ({name})"


def _pins(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.lstrip().startswith("#")]


@pytest.mark.parametrize("format_", ["oci", "nix"])
def test_an_invalid_profile_fails_the_build_with_the_validators_message(tmp_path: Path, format_: str) -> None:
    profile = tmp_path / "broken.yaml"
    profile.write_text(f"extends: {PROFILES / 'x86.yaml'}\ndistancing: {{threshold_cm: -5}}\n")
    validated = appliance("validate", str(profile))
    built = appliance("build", "--profile", str(profile), "--format", format_, "--out", str(tmp_path / "out"))
    assert validated.returncode == built.returncode == 2
    problem = validated.stderr.splitlines()[0]
    assert "threshold_cm" in problem and problem in built.stderr
    assert "nothing was built" in built.stderr and not (tmp_path / "out").exists()


DEBIAN = "localhost/appliance-base:bookworm-"
SHIPPED = {"x86": f"{DEBIAN}amd64-", "x86-openvino": f"{DEBIAN}amd64-", "x86-gpu-tensorrt": "nvcr.io/nvidia/cuda:",
           "coral": f"{DEBIAN}arm64-", "jetson-nano": "nvcr.io/nvidia/l4t-base:"}  # fmt: skip


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_has_a_build_context(name: str, tmp_path: Path) -> None:
    """What each Containerfile must hold, checked without building (no arm64 or NVIDIA base here)."""
    done = appliance("build", "--profile", str(PROFILES / f"{name}.yaml"), "--context-only", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    context = Path(json.loads(done.stdout)["context"])
    containerfile = (context / "Containerfile").read_text()
    assert re.search(rf"^ARG BASE={re.escape(SHIPPED[name])}", containerfile, flags=re.MULTILINE)
    for line in ("USER 10001:10001", "HEALTHCHECK", "--require-hashes", "appliance validate /opt/appliance/site/",
                 "COPY --from=builder /opt/appliance /opt/appliance"):  # fmt: skip
        assert line in containerfile, line
    site = {str(path.relative_to(context / "site")) for path in (context / "site").rglob("*") if path.is_file()}
    assert {f"{name}.yaml", "base.yaml"} <= {Path(path).name for path in site}
    assert json.loads((context / "build-info.json").read_text())["profile"] == name


def test_a_site_profile_kept_anywhere_has_a_self_contained_context(tmp_path: Path) -> None:
    """`extends: x86.yaml` from /somewhere/site.yaml: the context holds the shipped profiles and
    the model at the places the image's APPLIANCE_PROFILES names, and validates inside itself."""
    site = tmp_path / "etc" / "site.yaml"
    site.parent.mkdir()
    site.write_text("extends: x86.yaml\ndevice: {id: site-1}\ncameras: [{id: door, source: /dev/video0}]\nareas: []\n")
    done = appliance("build", str(site), "--context-only", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    context = Path(json.loads(done.stdout)["context"])
    assert (context / "site" / "local" / "site.yaml").is_file() and (
        context / "site" / "profiles" / "x86.yaml"
    ).is_file()
    assert "APPLIANCE_PROFILES=/opt/appliance/site/profiles" in (context / "Containerfile").read_text()
    assert "appliance validate /opt/appliance/site/local/site.yaml" in (context / "Containerfile").read_text()


def test_a_missing_ca_bundle_is_refused(tmp_path: Path) -> None:
    done = appliance("build", "--profile", str(PROFILES / "x86.yaml"), "--ca-bundle", str(tmp_path / "none.pem"),
                     "--out", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 2 and "--ca-bundle" in done.stderr and not (tmp_path / "out").exists()


def test_jetson_nano_has_no_nixos_image(tmp_path: Path) -> None:
    done = appliance(
        "build", "--profile", str(PROFILES / "jetson-nano.yaml"), "--format", "nix", "--out", str(tmp_path)
    )
    assert done.returncode == 2 and "NixOS does not serve jetson-nano" in done.stderr


# The x86 image, built with podman.


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """podman's default limits (1,048,576 open files) exceed what a container in a container may
    set; limits within this process's own are what the containers get instead."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={soft}:{hard}", "nproc=4096:4096"]\n')
    return {"CONTAINERS_CONF": str(conf)}


@pytest.fixture(scope="module")
def images(podman_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, str]]]:
    """The x86 profile built twice, under two names (`appliance build` caches no step)."""
    name = f"localhost/appliance-test-{uuid.uuid4().hex[:8]}"
    built: list[dict[str, str]] = []
    try:
        for tag in ("first", "second"):
            out = tmp_path_factory.mktemp(f"build-{tag}")
            arguments = ("--profile", str(PROFILES / "x86.yaml"), "--out", str(out), "--tag", f"{name}:{tag}")
            done = appliance("--log-level", "info", "build", *arguments, timeout=1800, env=podman_env)
            assert done.returncode == 0, done.stderr[-5000:]
            built.append(json.loads(done.stdout))
            print(f"build {tag}: {done.stdout}")  # the digests for the closing note
        yield built
    finally:
        subprocess.run(["podman", "rmi", "--force", f"{name}:first", f"{name}:second"], capture_output=True,
                       env={**os.environ, **podman_env})  # fmt: skip


def test_two_builds_of_the_same_profile_give_the_same_image(images: list[dict[str, str]]) -> None:
    first, second = images
    assert first["id"] == second["id"] and first["digest"] == second["digest"]
    assert first["revision"] == second["revision"] != "unknown"


def test_the_image_runs_the_mounted_profile_on_the_mounted_video(
    images: list[dict[str, str]], podman_env: dict[str, str], data: Path, tmp_path: Path
) -> None:
    api_port, metrics_port = free_port(), free_port()
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"""\
extends: /opt/appliance/site/profiles/x86.yaml
device: {{id: container-test}}
detector: {{threads: 1}}
cameras:
  - {{id: lobby, source: /media/video.avi, fps_cap: 10}}
areas: []
mqtt: {{enabled: false}}
metrics: {{listen: "127.0.0.1:{metrics_port}"}}
api: {{listen: "127.0.0.1:{api_port}", auth: {{enabled: false}}}}
""")
    profile.chmod(0o644)
    name = f"appliance-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **podman_env}
    podman = ["podman", *engine_options("podman").global_options]
    command = [*podman, "run", "--detach", "--name", name, "--network", "host",
               "--volume", f"{profile}:/etc/appliance/profile.yaml:ro",
               "--volume", f"{data / PETS_VIDEO}:/media/video.avi:ro",
               images[0]["image"], "run", "--profile", "/etc/appliance/profile.yaml"]  # fmt: skip
    started = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        base = f"http://127.0.0.1:{api_port}/api/v1"
        assert wait_until(lambda: _answers(f"{base}/health/ready"), 120), _logs(name, env)
        version = requests.get(f"{base}/version", timeout=5).json()
        assert version["build"]["revision"] == images[0]["revision"]
        metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert re.search(r'appliance_frames_processed_total\{camera="lobby"\} [1-9]', metrics), metrics
        assert f'revision="{images[0]["revision"]}"' in metrics
        user = subprocess.run([*podman, "inspect", "--format", "{{.Config.User}}", name], capture_output=True,
                              text=True, env=env, timeout=60).stdout.strip()  # fmt: skip
        assert user == "10001:10001"
    finally:
        subprocess.run([*podman, "rm", "--force", "--time", "10", name], capture_output=True, env=env, timeout=120)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _logs(name: str, env: dict[str, str]) -> str:
    return subprocess.run(
        ["podman", *engine_options("podman").global_options, "logs", name],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stderr


@pytest.fixture(autouse=True, scope="module")
def _tools() -> None:
    missing = [tool for tool in ("nix-instantiate", "podman", "debootstrap") if shutil.which(tool) is None]
    assert not missing, f"scripts/test.sh installs these: {missing}"


HYBRID = """\
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
"""
UNIFIED = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"
LEGACY = "tmpfs /sys/fs/cgroup tmpfs ro 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"


def test_hybrid_cgroups_are_told_apart_from_unified_and_legacy_ones() -> None:
    """crun refuses hybrid cgroups ('cgroups in hybrid mode not supported'): the build then uses
    runc, or chroot isolation when runc is absent (appliance/image/engine.py)."""
    assert cgroups_hybrid(HYBRID) and not cgroups_hybrid(UNIFIED) and not cgroups_hybrid(LEGACY)
    assert engine_options("/usr/bin/docker").global_options == ()
