"""OTA bundles checked and applied without a runtime: every rejection leaves the device as it was
and says why; an applier killed with SIGKILL at every state of its machine leaves, after the next
start, one committed slot and a consistent journal."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import requests
from jinja2.sandbox import SandboxedEnvironment

from appliance.config import load_profile
from appliance.ota.applier import Applier, FileHost
from appliance.ota.bundle import parse_manifest
from appliance.ota.journal import STATES
from appliance.ota.keys import generate
from appliance.ota.pack import BundleSpec, manifest_for, pack
from appliance.ota.rejection import BundleError
from tests.conftest import PETS_VIDEO, PROFILES, REPO
from tests.runtime import RunningAppliance
from tests.servers import wait_until
from tests.servers.mosquitto import Mosquitto, Subscriber

YOLOX = "models/yolox_nano_onnx/yolox_nano.onnx"
PROFILE = """\
extends: {x86}
device: {{id: dev-1}}   # the device
cameras:
  - id: lobby
    source: {video}
areas: []
storage: {{data_dir: {root}/data}}
metrics: {{enabled: false}}
mqtt: {{enabled: false}}
api: {{enabled: false}}
ota: {{inbox: {root}/inbox, state_dir: {root}/state, trusted_keys: [{root}/keys/signer.pub], max_bundle_mb: 8}}
"""


class Device:
    """A profile, its OTA folders and a signing key, in a temporary folder."""

    def __init__(self, root: Path, data: Path) -> None:
        self.root, self.data = root, data
        (root / "keys").mkdir()
        generate(root / "keys" / "signer.key", root / "keys" / "signer.pub")
        generate(root / "keys" / "stranger.key", root / "keys" / "stranger.pub")
        self.profile = root / "profile.yaml"
        self.profile.write_text(PROFILE.format(x86=PROFILES / "x86.yaml", video=data / PETS_VIDEO, root=root))
        self.inbox = root / "inbox"
        self.applier()  # makes the folders

    def applier(self) -> Applier:
        return Applier(self.profile, load_profile(self.profile).profile.ota, FileHost(self.profile))

    def bundle(self, name: str, version: int, *, key: str = "signer", **spec: object) -> Path:
        if "profile" not in spec and "model_files" not in spec:
            spec["profile"] = self.new_profile(f"v{version}")
        path = self.root / name
        return pack(BundleSpec(version=version, key=self.root / "keys" / f"{key}.key", **spec), path)  # type: ignore[arg-type]

    def new_profile(self, name: str, change: Callable[[str], str] = lambda text: text) -> Path:
        text = change(self.profile.read_text().replace("{id: dev-1}", f"{{id: dev-1, name: {name}}}"))
        path = self.root / f"{name}.yaml"
        path.write_text(text)
        return path

    def drop(self, bundle: Path) -> None:
        """Put `bundle` into the inbox as a writer must: a hidden name, then a rename."""
        hidden = self.inbox / f".{bundle.name}.partial"
        hidden.write_bytes(bundle.read_bytes())
        hidden.rename(self.inbox / bundle.name)

    def copy_in_parts(self, bundle: Path) -> None:
        """Put `bundle` into the inbox as a careless writer would: under its own name, its first
        kilobyte (the middle of the manifest), then the rest 2 s later (watchdog alone holds an
        event back for half a second)."""
        content = bundle.read_bytes()
        with (self.inbox / bundle.name).open("wb") as stream:
            stream.write(content[:1000])
            stream.flush()
            time.sleep(2)
            stream.write(content[1000:])

    def install(self, bundle: Path) -> str:
        """Drop `bundle` into the inbox and apply it here."""
        self.drop(bundle)
        applier = self.applier()
        results = [applier.process(path, load_profile(self.profile)) for path in applier.waiting()]
        assert len(results) == 1
        return f"{results[0].outcome}: {results[0].reason}: {results[0].message}"

    def fingerprint(self) -> dict[str, str]:
        """What a rejected bundle must not change: the profile and every slot, byte for byte."""
        found = {"profile": hashlib.sha256(self.profile.read_bytes()).hexdigest()}
        state = self.root / "state"
        current = state / "current"
        found["current"] = str(current.readlink()) if current.is_symlink() else ""
        for path in sorted((state / "slots").rglob("*")) if (state / "slots").exists() else []:
            if path.is_file():
                found[str(path.relative_to(state))] = hashlib.sha256(path.read_bytes()).hexdigest()
        return found


@pytest.fixture
def device(tmp_path: Path, data: Path) -> Device:
    return Device(tmp_path, data)


def tar_with(good: Path, extra: tarfile.TarInfo, content: bytes = b"", *, drop_payload: bool = False) -> Path:
    """`good` with one more entry, written by hand: what `pack` would never make."""
    target = good.with_name(f"bad-{extra.name.strip('/').replace('/', '_')[:40]}-{extra.type.decode()}.bundle")
    with tarfile.open(good) as source, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for member in source.getmembers():
            if drop_payload and member.name.startswith("payload/"):
                continue
            archive.addfile(member, source.extractfile(member))
        archive.addfile(extra, io.BytesIO(content) if extra.isreg() else None)
    return target


def entry(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


def rejection_cases(device: Device) -> dict[str, Path]:
    """Each rejection case's bundle, named by the reason the device must give."""
    good = device.bundle("good.bundle", 5)
    sig = good.with_name("bad-signature.bundle")
    with tarfile.open(good) as source, tarfile.open(sig, "w", format=tarfile.PAX_FORMAT) as archive:
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.sig":
                record = json.loads(data)
                record["signature"] = "A" * 86 + "=="
                data = json.dumps(record).encode()
                member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    tampered = device.new_profile("tampered")
    tampered_bundle = device.bundle("tampered.bundle", 6, profile=tampered)
    resized = device.bundle("resized.bundle", 6, profile=device.new_profile("resized"))
    tampered.write_text(tampered.read_text().replace("dev-1", "dev-2"))  # same size, other bytes
    too_many = good.with_name("many.bundle")
    with tarfile.open(good) as source, tarfile.open(too_many, "w") as archive:
        for member in source.getmembers():
            archive.addfile(member, source.extractfile(member))
        for index in range(70):
            archive.addfile(entry(f"payload/f{index}", size=1), io.BytesIO(b"x"))
    big = device.root / "big.onnx"
    big.write_bytes(os.urandom(9 * 1024 * 1024))
    garbage = device.root / "garbage.onnx"
    garbage.write_bytes(b"this is no onnx model" * 100)
    truncated = good.with_name("truncated.bundle")
    with tarfile.open(good) as source:
        payload = next(member for member in source.getmembers() if member.name.startswith("payload/"))
    truncated.write_bytes(good.read_bytes()[: payload.offset_data + payload.size // 2])  # a copy cut short
    invalid = device.new_profile("invalid", lambda text: text + "sauce: tomato\n")
    return {
        "bad_signature": sig,
        "unknown_key": device.bundle("stranger.bundle", 6, key="stranger"),
        "tampered": _repacked(tampered_bundle, tampered),
        "size_mismatch": _repacked(resized, device.root / "resized.yaml", b"# one more line\n"),
        "wrong_target": device.bundle("coral.bundle", 6, hardware="coral"),
        "wrong_target-device": device.bundle("other.bundle", 6, device="dev-9"),
        "expired": device.bundle("expired.bundle", 6, expires_days=-1),
        "path_traversal": tar_with(good, entry("payload/../../../etc/evil", size=4), b"evil"),
        "absolute_path": tar_with(good, entry("/etc/evil", size=4), b"evil"),
        "symlink": tar_with(good, entry("payload/link", tarfile.SYMTYPE, link="/etc/shadow")),
        "hardlink": tar_with(good, entry("payload/hard", tarfile.LNKTYPE, link="manifest.json")),
        "device_node": tar_with(good, entry("payload/null", tarfile.CHRTYPE)),
        "oversized": device.bundle("big.bundle", 6, model_files=(big,), detector={"backend": "onnxruntime"}),
        "too_many_files": too_many,
        "unlisted_file": tar_with(good, entry("payload/extra.txt", size=2), b"hi"),
        "invalid_config": device.bundle("invalid.bundle", 6, profile=invalid),
        "model_failed": device.bundle("garbage.bundle", 6, model_files=(garbage,),
                                      detector={"backend": "onnxruntime", "model": {"architecture": "yolox"}}),
        "truncated": truncated,
    }  # fmt: skip


def _repacked(bundle: Path, changed: Path, append: bytes = b"") -> Path:
    """`bundle` with its payload file replaced by `changed` (plus `append`), the manifest kept."""
    target = bundle.with_name(f"re-{bundle.name}")
    content = changed.read_bytes() + append
    with tarfile.open(bundle) as source, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("payload/"):
                data, member.size = content, len(content)
            archive.addfile(member, io.BytesIO(data))
    return target


def test_every_rejection_leaves_the_device_unchanged_and_says_why(device: Device) -> None:
    assert device.install(device.bundle("v4.bundle", 4)).startswith("installed")
    cases = rejection_cases(device)
    cases["downgrade"] = device.bundle("old.bundle", 3)
    cases["replay"] = device.bundle("again.bundle", 4)
    before = device.fingerprint()
    reasons = {}
    for expected, bundle in cases.items():
        outcome = device.install(bundle)
        reasons[expected] = outcome
        assert outcome.startswith(f"rejected: {expected.split('-')[0]}: "), (expected, outcome)
        assert device.fingerprint() == before, expected
        reason_file = device.inbox / "rejected" / f"{bundle.name}.reason"
        assert reason_file.read_text().startswith(f"rejected: {expected.split('-')[0]}: ")
    assert not list(device.inbox.glob("*.bundle")) and not (device.root / "state" / "work").exists()
    print("\n".join(f"{key}: {value}" for key, value in reasons.items()))


def test_a_config_and_a_model_update_are_installed_in_turn(device: Device, data: Path) -> None:
    original = device.profile.read_text()
    assert device.install(device.bundle("config.bundle", 1)).startswith("installed")
    assert "name: v1" in device.profile.read_text() and "# the device" in device.profile.read_text()
    model = device.bundle("model.bundle", 2, model_files=(data / YOLOX,),
                          detector={"backend": "onnxruntime", "model": {"architecture": "yolox"}, "input_size": None,
                                    "class_id": 0, "min_score": 0.3})  # fmt: skip
    assert device.install(model).startswith("installed")
    detector = load_profile(device.profile).profile.detector
    assert detector.backend == "onnxruntime" and detector.model.path == str(
        device.root / "state/slots/b/files/yolox_nano.onnx"
    )
    assert str((device.root / "state" / "current").readlink()) == "slots/b"
    assert (device.root / "profile.yaml.previous").exists() and original != device.profile.read_text()
    status = device.applier().status()
    assert status["installed_version"] == 2 and [item["outcome"] for item in status["history"]] == ["installed"] * 2


def ota(device: Device, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "appliance", "ota", *args, "--profile", str(device.profile)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


OFFLINE_STATES = [state for state in STATES if state != "rolling_back"]  # offline, nothing can be unhealthy


@pytest.mark.parametrize("state", OFFLINE_STATES)
def test_an_applier_killed_at_every_state_leaves_one_committed_slot(device: Device, state: str) -> None:
    assert device.install(device.bundle("v1.bundle", 1)).startswith("installed")
    committed = device.fingerprint()
    old_profile = device.profile.read_bytes()
    bundle = device.bundle("v2.bundle", 2)
    (device.inbox / bundle.name).write_bytes(bundle.read_bytes())
    killed = ota(device, "apply", env={"APPLIANCE_OTA_CRASH_AT": state})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert json.loads((device.root / "state" / "journal.json").read_text())["state"] == state

    recovered = ota(device, "apply")
    assert recovered.returncode == 0, recovered.stderr
    assert not (device.root / "state" / "journal.json").exists() and not (device.root / "state" / "work").exists()
    current = str((device.root / "state" / "current").readlink())
    slot_profile = (device.root / "state" / current / "profile.yaml").read_bytes()
    assert device.profile.read_bytes() == slot_profile  # the profile is the committed slot's, whole
    if state in ("received", "committed"):  # not yet taken from the inbox (tried again), or already done
        assert current == "slots/b" and (device.inbox / "done" / "v2.bundle").exists()
    else:
        assert device.fingerprint()["current"] == committed["current"] == current
        assert device.profile.read_bytes() == old_profile
        assert "interrupted" in (device.inbox / "rejected" / "v2.bundle.reason").read_text()


def test_the_command_line_makes_keys_packs_verifies_and_reports(device: Device, tmp_path: Path) -> None:
    keys = tmp_path / "cli"
    made = subprocess.run([sys.executable, "-m", "appliance", "ota", "keygen", str(keys)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0 and (tmp_path / "cli.key").stat().st_mode & 0o777 == 0o600
    again = subprocess.run([sys.executable, "-m", "appliance", "ota", "keygen", str(keys)], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert again.returncode == 2 and "not overwritten" in again.stderr
    good, stranger = device.bundle("good.bundle", 1), device.bundle("stranger.bundle", 1, key="stranger")
    verified = ota(device, "verify", str(good))
    assert verified.returncode == 0 and "ok: version 1, config" in verified.stdout, verified.stderr
    refused = ota(device, "verify", str(stranger))
    assert refused.returncode == 2 and "unknown_key" in refused.stderr
    assert device.fingerprint()["current"] == "" and not list(device.inbox.glob("*.bundle"))
    (device.inbox / good.name).write_bytes(good.read_bytes())
    (device.inbox / ".hidden.bundle").write_bytes(good.read_bytes())
    (device.inbox / "late.bundle.partial").write_bytes(good.read_bytes())
    applied = ota(device, "apply")
    assert applied.returncode == 0 and "good.bundle: installed" in applied.stdout
    assert (device.inbox / ".hidden.bundle").exists() and (device.inbox / "late.bundle.partial").exists()
    status = ota(device, "status", "--json")
    assert json.loads(status.stdout)["installed_version"] == 1


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("created", "yesterday", "is not a date-time"),
        ("expires", "never", "is not a date-time"),
        ("expires", "2030-06-30T23:59:60Z", "is not a date-time"),  # a leap second
        ("created", "2098-01-01T00:00:00Z", "is in the future"),
        ("version", 8.0, "is not a whole number"),
    ],
)
def test_a_manifest_with_a_malformed_date_or_version_is_refused(device: Device, key: str, value: object,
                                                                says: str) -> None:  # fmt: skip
    spec = BundleSpec(version=8, key=device.root / "keys" / "signer.key", profile=device.new_profile("v8"))
    manifest = json.loads(manifest_for(spec)) | {key: value}
    with pytest.raises(BundleError) as refused:
        parse_manifest(json.dumps(manifest).encode())
    assert refused.value.reason == "bad_manifest" and says in refused.value.message, refused.value.message


@pytest.mark.parametrize(
    "name",
    [
        "a" * 240 + ".bundle",
        "forged\nota: installed.bundle",
        "tab\there.bundle",
        "right-to-left\u202eeldnub.exe",
        "line\u2028separator.bundle",
    ],
)
def test_a_bundle_name_cannot_stop_the_device(device: Device, name: str) -> None:
    """A name near the file system's limit (its .reason once failed with ENAMETOOLONG and left a
    journal that stopped every start) or with control characters (a forged log line)."""
    bundle = device.bundle("stranger.bundle", 1, key="stranger")
    (device.inbox / name).write_bytes(bundle.read_bytes())
    applied = ota(device, "apply")
    assert applied.returncode == 0, applied.stderr
    (rejected,) = [path for path in (device.inbox / "rejected").iterdir() if not path.name.endswith(".reason")]
    assert len(rejected.name) <= 100 and "\n" not in rejected.name and "\t" not in rejected.name
    assert "unknown_key" in rejected.with_name(f"{rejected.name}.reason").read_text()
    assert "\nota: installed" not in applied.stderr
    assert not any(character in applied.stderr for character in "\t\u202e\u2028"), applied.stderr
    assert not (device.root / "state" / "journal.json").exists() and ota(device, "apply").returncode == 0


@pytest.mark.parametrize("journal", ["{not json", '{"state": "received"}', '{"bundle": 1, "oops": true}'])
def test_a_damaged_journal_is_set_aside_and_the_device_starts(device: Device, journal: str) -> None:
    (device.root / "state" / "journal.json").write_text(journal)
    applied = ota(device, "apply")
    assert applied.returncode == 0 and "journal" in applied.stderr and "unreadable" in applied.stderr, applied.stderr
    assert (device.root / "state" / "journal.json.unreadable").read_text() == journal
    assert device.install(device.bundle("next.bundle", 1)).startswith("installed")


def crafted(kind: str, good: Path, folder: Path) -> Path:
    """Archives no packer makes: a header declaring 1.2 GB, another compression, a sparse member
    without its map, a gzip stream damaged in the middle or only in its checksum."""
    path = folder / f"{kind}.bundle"
    if kind == "huge-pax-header":  # 600 MB of zeros behind it, in under a megabyte of gzip
        header = tarfile.TarInfo("././@PaxHeader")
        header.type, header.size = tarfile.XHDTYPE, 600 << 20
        with gzip.GzipFile(path, "wb", compresslevel=1) as stream:
            stream.write(header.tobuf(format=tarfile.USTAR_FORMAT))
            for _ in range(600):
                stream.write(bytes(1 << 20))
    elif kind == "bzip2":
        path.write_bytes(bz2.compress(good.read_bytes()))
    elif kind == "sparse-without-map":
        header = tarfile.TarInfo("payload/sparse.bin")
        header.type, header.size = tarfile.GNUTYPE_SPARSE, 1024
        path.write_bytes(gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 2048))
    elif kind == "damaged-gzip":  # damaged in the middle
        data = bytearray(gzip.compress(good.read_bytes()))
        data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
        path.write_bytes(bytes(data))
    else:  # intact tar, but the gzip trailer's CRC (behind the tar's end marker) is wrong
        data = bytearray(gzip.compress(good.read_bytes()))
        data[-8:-4] = bytes(byte ^ 0xFF for byte in data[-8:-4])
        path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("kind", ["huge-pax-header", "bzip2", "sparse-without-map", "damaged-gzip", "bad-crc"])
def test_a_crafted_archive_is_refused_with_a_reason_and_bounded_memory(device: Device, kind: str) -> None:
    """Each is refused by `ota verify` (within 400 MB: a header declaring 1.2 GB once took 1.35 GB)
    and by the applier, with a reason file."""
    good = device.bundle("good.bundle", 1)
    bundle = crafted(kind, good, device.root)
    # VmHWM, the peak of this process's own memory since exec (ru_maxrss would carry pytest's,
    # inherited through fork)
    peak = ("import atexit, re, sys; atexit.register(lambda: print('peak KiB', re.search(r'VmHWM:\\s+(\\d+)', "
            "open('/proc/self/status').read())[1], file=sys.stderr)); ")  # fmt: skip
    command = [sys.executable, "-c", peak + "from appliance.cli import main; raise SystemExit(main())",
               "ota", "verify", "--profile", str(device.profile), str(bundle)]  # fmt: skip
    verified = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert verified.returncode == 2 and "refused" in verified.stderr and "Traceback" not in verified.stderr
    assert int(verified.stderr.split("peak KiB")[1].split()[0]) < 400 * 1024, verified.stderr
    before = device.fingerprint()
    outcome = device.install(bundle)
    assert outcome.startswith("rejected: ") and outcome.split(":")[1].strip() in (
        "oversized",
        "truncated",
        "unexpected_entry",
    ), outcome
    assert device.fingerprint() == before and (device.inbox / "rejected" / bundle.name).exists()


def test_an_inbox_replaced_by_a_link_takes_no_foreign_file(device: Device, tmp_path: Path) -> None:
    foreign = tmp_path / "elsewhere"
    foreign.mkdir()
    (foreign / "notes.bundle").write_text("not ours")
    shutil.rmtree(device.inbox)
    device.inbox.symlink_to(foreign)
    applied = ota(device, "apply")
    assert applied.returncode == 0 and "is a symbolic link" in applied.stderr, applied.stderr
    assert (foreign / "notes.bundle").read_text() == "not ours" and sorted(p.name for p in foreign.iterdir()) == [
        "notes.bundle"
    ]


def test_pack_refuses_what_the_device_would_refuse(device: Device, tmp_path: Path) -> None:
    invalid = device.new_profile("lots", lambda text: text.replace("areas: []", "areas: [{id: a, cameras: [lobby], "
                                                                   "occupancy_threshold: lots}]"))  # fmt: skip
    key = str(device.root / "keys" / "signer.key")
    for extra in (["--profile", str(invalid)], ["--model", str(invalid), "--detector", '{"backend": "onnx"}']):
        out = tmp_path / "refused.bundle"
        packed = subprocess.run([sys.executable, "-m", "appliance", "ota", "pack", "--key", key, "--version", "3",
                                 *extra, "--out", str(out)], capture_output=True, text=True, timeout=60)  # fmt: skip
        assert packed.returncode == 2 and "not packed" in packed.stderr and not out.exists(), packed.stderr
        assert "occupancy_threshold" in packed.stderr or "'onnx' is not one of" in packed.stderr


def test_refusals_point_at_the_bundle_file_and_carry_the_version(device: Device) -> None:
    bad = device.new_profile("bad", lambda text: text.replace("areas: []", "areas: []\nsauce: 1"))
    assert device.install(device.bundle("bad.bundle", 5, profile=bad)).startswith("rejected: invalid_config")
    history = device.applier().status()["history"]
    assert history[0]["version"] == 5 and "bundle:bad.yaml:" in history[0]["message"], history[0]
    shown = ota(device, "status")
    assert "None" not in shown.stdout and "version 5  rejected: (invalid_config)" in shown.stdout, shown.stdout


def test_verify_judges_the_bundle_not_the_running_device(device: Device, data: Path) -> None:
    """The runtime holds its data folder and its metrics port: `ota verify` on the device must
    not take them for the bundle's problems."""
    running = start_runtime(device, data)
    try:
        assert running.wait_for_metric('appliance_camera_up{camera="lobby"}', 1), running.log
        bundle = device.bundle("next.bundle", 1, profile=device.new_profile("next", lambda _: running.profile_path
                                                                            .read_text()))  # fmt: skip
        verified = ota(device, "verify", str(bundle))
        assert verified.returncode == 0 and "ok: version 1" in verified.stdout, verified.stderr
    finally:
        assert running.stop() == 0


RUNTIME_PROFILE = """\
extends: {x86}
device: {{id: dev-1}}
detector: {{threads: 1}}
cameras:
  - id: lobby
    source: {video}
    fps_cap: 10
areas: []
storage: {{data_dir: @DATA_DIR@}}
metrics: {{listen: "127.0.0.1:@METRICS_PORT@"}}
mqtt: {{enabled: {mqtt}, host: 127.0.0.1, port: {broker_port}}}
ota: {{inbox: {root}/inbox, state_dir: {root}/state, trusted_keys: [{root}/keys/signer.pub], health_check_s: 8}}
"""
UPDATE_TOPIC = "appliance/dev-1/update"
DISCOVERY_TOPIC = "homeassistant/update/dev-1/update/config"


def start_runtime(
    device: Device, data: Path, broker_port: int = 0, env: dict[str, str] | None = None
) -> RunningAppliance:
    text = RUNTIME_PROFILE.format(x86=PROFILES / "x86.yaml", video=data / PETS_VIDEO, root=device.root,
                                  mqtt=str(bool(broker_port)).lower(), broker_port=broker_port or 1883)  # fmt: skip
    return RunningAppliance(device.root, text, env=env)


def outcome_of(device: Device, appliance: RunningAppliance, count: int) -> str:
    """The `count`-th bundle's result, once the history has it."""
    history = device.root / "state" / "history.json"
    done = lambda: history.exists() and len(json.loads(history.read_text())) >= count  # noqa: E731
    assert wait_until(done, 120), appliance.log
    last = json.loads(history.read_text())[-1]
    return f"{last['outcome']}: {last['reason']}: {last['message']}"


def yolox_bundle(device: Device, data: Path, name: str, version: int, min_score: float) -> Path:
    detector = {"backend": "onnxruntime", "model": {"architecture": "yolox"}, "input_size": None, "class_id": 0,
                "min_score": min_score}  # fmt: skip
    return device.bundle(name, version, model_files=(data / YOLOX,), detector=detector)


def test_updates_in_a_running_appliance_take_effect_or_roll_back(tmp_path: Path, data: Path) -> None:
    device = Device(tmp_path, data)
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker").start()
    subscriber = Subscriber(broker.port, (UPDATE_TOPIC, DISCOVERY_TOPIC))
    appliance = start_runtime(device, data, broker.port)
    try:
        assert wait_until(lambda: "lobby: online" in appliance.log, 90), appliance.log
        pids = appliance.worker_pids()
        slower = device.new_profile("slower", lambda profile: profile.replace("fps_cap: 10", "fps_cap: 8"))
        device.copy_in_parts(device.bundle("config.bundle", 1, profile=slower))  # taken once it is whole
        assert outcome_of(device, appliance, 1).startswith("installed"), appliance.log
        assert "fps_cap: 8" in appliance.profile_path.read_text()
        assert appliance.worker_pids()["lobby"] != pids["lobby"]

        good = appliance.profile_path.read_bytes()
        broken = device.new_profile("broken", lambda profile: profile.replace(str(data / PETS_VIDEO),
                                                                               "rtsp://127.0.0.1:9/none"))  # fmt: skip
        device.drop(device.bundle("broken.bundle", 2, profile=broken))
        assert outcome_of(device, appliance, 2).startswith("rolled_back: unhealthy: camera lobby"), appliance.log
        assert appliance.profile_path.read_bytes() == good

        device.drop(yolox_bundle(device, data, "model.bundle", 3, min_score=0.3))
        assert outcome_of(device, appliance, 3).startswith("installed"), appliance.log
        assert "onnxruntime" in appliance.log.split("config.bundle")[-1]
        good = appliance.profile_path.read_bytes()

        device.drop(yolox_bundle(device, data, "blind.bundle", 4, min_score=0.999))  # runs, and finds nobody
        blind = outcome_of(device, appliance, 4)
        assert blind.startswith("rolled_back: unhealthy: camera lobby"), appliance.log
        assert appliance.profile_path.read_bytes() == good

        assert appliance.wait_for_metric("appliance_ota_installed_version", 3, 10)
        assert appliance.wait_for_metric('appliance_ota_failures_total{reason="unhealthy"}', 2, 10)
        assert appliance.metric("appliance_ota_last_success_timestamp_seconds") > 1.7e9
        check_home_assistant_entity(subscriber, "rolled back: blind.bundle (unhealthy)")
        check_api(appliance)
    finally:
        appliance.kill()
        subscriber.close()
        broker.stop()


def check_home_assistant_entity(subscriber: Subscriber, summary: str) -> None:
    """The retained `update` state in its event schema, rendered by the discovery template into what
    Home Assistant's update entity reads."""
    assert wait_until(lambda: subscriber.last(UPDATE_TOPIC) is not None and json.loads(
        subscriber.last(UPDATE_TOPIC).payload)["last_result"]["bundle"] == "blind.bundle", 30)  # type: ignore[union-attr]  # fmt: skip
    state = json.loads(subscriber.last(UPDATE_TOPIC).payload)  # type: ignore[union-attr]
    jsonschema.validate(state, json.loads((REPO / "schemas" / "events" / "update.schema.json").read_text()))
    config = json.loads(subscriber.last(DISCOVERY_TOPIC).payload)  # type: ignore[union-attr]
    assert config["state_topic"] == UPDATE_TOPIC and config["device_class"] == "firmware"
    rendered = json.loads(SandboxedEnvironment().from_string(config["value_template"]).render(value_json=state))
    assert rendered["installed_version"] == rendered["latest_version"] == "3"
    assert rendered["in_progress"] is False and rendered["release_summary"].startswith(summary), rendered


def check_api(appliance: RunningAppliance) -> None:
    """The status and the history, for a viewer."""
    command = [sys.executable, "-m", "appliance", "users", "--profile", str(appliance.profile_path), "add", "eve",
               "--role", "viewer", "--password-stdin"]  # fmt: skip
    assert (
        subprocess.run(command, input="viewer-password-1\n", text=True, capture_output=True, timeout=60).returncode == 0
    )
    base = f"http://127.0.0.1:{appliance.api_port}/api/v1"
    login = requests.post(f"{base}/auth/login", json={"username": "eve", "password": "viewer-password-1"}, timeout=10)
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    status = requests.get(f"{base}/ota/status", headers=headers, timeout=10).json()
    assert status["enabled"] and status["installed_version"] == 3 and status["slot"] in ("a", "b")
    assert status["in_progress"] is None and status["last_result"]["bundle"] == "blind.bundle"
    history = requests.get(f"{base}/ota/history", headers=headers, timeout=10).json()["items"]
    outcomes = [(item["bundle"], item["outcome"]) for item in history]
    assert outcomes == [("blind.bundle", "rolled_back"), ("model.bundle", "installed"),
                        ("broken.bundle", "rolled_back"), ("config.bundle", "installed")]  # fmt: skip
    assert requests.get(f"{base}/ota/history", timeout=10).status_code == 401


def test_a_runtime_killed_while_rolling_back_comes_back_on_the_old_profile(tmp_path: Path, data: Path) -> None:
    device = Device(tmp_path, data)
    killed = start_runtime(device, data, env={"APPLIANCE_OTA_CRASH_AT": "rolling_back"})
    try:
        factory = killed.profile_path.read_bytes()
        assert wait_until(lambda: "lobby: online" in killed.log, 90), killed.log
        broken = device.new_profile("broken", lambda profile: profile.replace(str(data / PETS_VIDEO),
                                                                               "rtsp://127.0.0.1:9/none"))  # fmt: skip
        device.drop(device.bundle("broken.bundle", 1, profile=broken))
        assert killed.process.wait(120) == -signal.SIGKILL, killed.log
        assert json.loads((tmp_path / "state" / "journal.json").read_text())["state"] == "rolling_back"
    finally:
        killed.kill()
    restarted = RunningAppliance(tmp_path, factory.decode())
    try:
        assert wait_until(lambda: "lobby: online" in restarted.log, 90), restarted.log
        assert restarted.profile_path.read_bytes() == factory
        assert not (tmp_path / "state" / "journal.json").exists() and not (tmp_path / "state" / "current").exists()
        assert "interrupted at rolling_back" in (device.inbox / "rejected" / "broken.bundle.reason").read_text()
        assert outcome_of(device, restarted, 1).startswith("rolled_back: interrupted")
    finally:
        restarted.kill()
