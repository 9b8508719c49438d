"""The update state machine: received -> verified -> staged -> switched -> health -> committed,
or -> rolling_back; each state recorded in the journal before the step after it begins, so
`recover` can bring a device that lost power at any step to one committed slot.

The applier does not know whether a runtime is running: its `Host` writes the profile and
reloads whatever runs it, and watches the health window (the runtime's host), or only writes the
file (`appliance ota apply` with no runtime running)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from packaging.version import Version
from ruamel.yaml.comments import CommentedMap

from appliance import __version__
from appliance.config import LoadedProfile, ProfileError, ProfileIssue, load_profile
from appliance.config.model import OtaConfig
from appliance.config.yamlio import ProfileDocument, merge_patch, write_atomically
from appliance.files import FileReadError, read_regular_file
from appliance.ota import bundle as bundles
from appliance.ota import keys
from appliance.ota.bundle import Limits, Manifest
from appliance.ota.journal import Journal, Step
from appliance.ota.probe import probe_detector
from appliance.ota.rejection import BundleError
from appliance.ota.slots import Slots, fsync_tree
from appliance.runtime.events import UpdateResult
from appliance.runtime.preflight import preflight
from appliance.runtime.serialize import update_result_json

log = logging.getLogger(__name__)
IGNORED_SUFFIXES = (".partial", ".part", ".tmp", ".temp", ".swp", "~")
MAX_PROFILE_BYTES = 1024 * 1024
MAX_NAME = 100  # with ".reason" and a ".<time>" suffix, far below any file system's name limit
SAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")


class Host(Protocol):
    def check(self, loaded: LoadedProfile) -> list[ProfileIssue]:
        """What `loaded` would meet on this machine (the runtime's preflight)."""

    def apply(self, text: str) -> list[str]:
        """Make `text` the profile and reload what runs it; the problems if it was refused."""

    def watch(self, seconds: float) -> str | None:
        """Why the update just applied is unhealthy, or None once it stayed healthy `seconds`."""


@dataclass(frozen=True)
class Candidate:
    """A bundle that passed every check, unpacked in `payload`."""

    manifest: Manifest
    payload: Path
    profile_text: str  # the live profile, or the bundle's; the detector's model still to be placed

    def text_for(self, model_folder: Path) -> str:
        """The new profile with the bundle's model (if any) loaded from `model_folder`."""
        if self.manifest.detector is None:
            return self.profile_text
        manifest = self.manifest
        document = ProfileDocument.load(Path("profile.yaml"), self.profile_text)
        if not isinstance(document.data.get("detector"), dict):
            document.data["detector"] = CommentedMap()
        patch = json.loads(json.dumps(manifest.detector))
        model_file = str(patch["model"]["path"])
        patch["model"]["path"] = str(model_folder / model_file)
        patch["model"]["sha256"] = next(item.sha256 for item in manifest.files if item.path == model_file)
        merge_patch(document.data["detector"], patch)
        return document.dumps()


class Applier:
    def __init__(self, profile_path: Path, config: OtaConfig, host: Host) -> None:
        self.profile_path = profile_path
        self.config = config
        self.host = host
        self.root = Path(config.state_dir)
        self.inbox = Path(config.inbox)
        for folder in (self.root, self.inbox, self.inbox / "done", self.inbox / "rejected"):
            if folder.is_symlink():
                break  # nothing is made through a link; folder_problem says so
            folder.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.root)
        self.slots = Slots(self.root)
        self.work = self.root / "work"
        self._told: str | None = None  # the folder problem said last

    def folder_problem(self) -> str | None:
        """Why the OTA folders cannot be trusted: one is a symbolic link (an inbox pointing
        elsewhere would have foreign files moved and rejected) or belongs to another user."""
        for folder in (self.root, self.inbox, self.inbox / "done", self.inbox / "rejected"):
            try:
                status = folder.lstat()
            except OSError as error:
                return f"{folder}: {error.strerror or error}"
            if stat.S_ISLNK(status.st_mode):
                return f"{folder} is a symbolic link"
            if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.geteuid():
                return f"{folder} is not a folder of this user"
        return None

    def waiting(self) -> list[Path]:
        """Complete bundles in the inbox, oldest first: writers rename them into place, so hidden,
        partial and temporary names are skipped, and so is anything but a regular file. None at
        all while one of the OTA folders is a link or another user's (`folder_problem`)."""
        if problem := self.folder_problem():
            if problem != self._told:
                log.error("ota: %s; no bundle is taken until it is put right", problem)
            self._told = problem
            return []
        self._told = None
        found = []
        for path in self.inbox.iterdir():
            if path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES):
                continue
            if path.is_file() and not path.is_symlink():
                found.append(path)
        return sorted(found, key=lambda path: (path.stat().st_mtime, path.name))

    def _record(self, step: Step) -> Step:
        """Journal the update's next state, and say so in the log."""
        details = f" (version {step.version}, {step.kind})" if step.state == "verified" else ""
        if step.state == "health":
            details = f": watching for {self.config.health_check_s:g} s"
        log.info("ota: %s: %s%s", step.bundle, step.state.replace("_", " "), details)
        return self.journal.record(step)

    def process(self, bundle: Path, running: LoadedProfile) -> UpdateResult:
        """Take one bundle from the inbox through the whole state machine."""
        step = self._record(Step("received", safe_name(bundle.name), time.time()))
        held = self._take(bundle)
        try:
            candidate = self.verify(held, running, self._fresh(self.work / "payload"))
        except BundleError as error:
            return self._finish(step, error)
        step = self._record(step.to("verified", version=candidate.manifest.version, kind=candidate.manifest.kind))
        self.slots.mark_tried(candidate.manifest.version)
        slot, previous = self.slots.inactive(), self.slots.current()
        new_text = self._stage(candidate, slot)
        step = self._record(step.to("staged", slot=slot, previous=previous or ""))
        self.slots.switch(slot)
        step = self._record(step.to("switched"))
        if problems := self.host.apply(new_text):
            return self._roll_back(step, BundleError("invalid_config", "; ".join(problems)))
        step = self._record(step.to("health"))
        if why := self.host.watch(self.config.health_check_s):
            return self._roll_back(step, BundleError("unhealthy", why))
        step = self._record(step.to("committed"))
        return self._finish(step)

    def verify(self, bundle: Path, running: LoadedProfile, payload: Path) -> Candidate:
        """Every check the device makes before it changes anything; BundleError says which failed."""
        limits = Limits(max_bytes=self.config.max_bundle_mb * 1024 * 1024)
        manifest_bytes, signature = bundles.unpack(bundle, payload, limits)
        try:
            trusted = keys.trusted_keys(self.config.trusted_keys)
        except keys.KeyFileError as error:
            raise BundleError("unknown_key", f"a trusted key cannot be read: {error}") from None
        bundles.verify_signature(manifest_bytes, signature, trusted)
        manifest = bundles.parse_manifest(manifest_bytes)
        try:
            return self._verify_content(manifest, payload, running)
        except BundleError as error:
            error.version = manifest.version
            raise

    def _verify_content(self, manifest: Manifest, payload: Path, running: LoadedProfile) -> Candidate:
        """The checks after the signature and the manifest's own."""
        bundles.check_files(manifest, payload)
        self._check_policy(manifest, running)
        candidate = Candidate(manifest, payload, self._profile_text(manifest, payload))
        shown_as = f"bundle:{manifest.profile}" if manifest.profile else None
        loaded = self._validated(candidate.text_for(payload), shown_as)
        self._check_slot_in_use(running, loaded)
        new_detector = manifest.detector is not None or loaded.profile.detector != running.profile.detector
        if new_detector and (problem := probe_detector(self.profile_path, candidate.text_for(payload), loaded)):
            raise BundleError("model_failed", problem)
        return candidate

    def recover(self) -> UpdateResult | None:
        """At start: finish or undo an update a crash or power cut interrupted. Nothing here may
        keep the device from starting: when the files cannot be put right (a full disk), it says
        so and starts on the profile as it is; the journal stays for the next start to try."""
        if problem := self.folder_problem():
            log.error("ota: %s; an interrupted update is left as it is until it is put right", problem)
            return None
        try:
            return self._recover()
        except OSError as error:
            log.error("ota: cannot finish or undo the interrupted update (%s); starting on the profile as it is, "
                      "and trying again at the next start", error.strerror or error)  # fmt: skip
            return None

    def _recover(self) -> UpdateResult | None:
        step = self.journal.read()
        if step is None:
            return None
        log.warning("ota: an update of %s was interrupted at %s; %s", step.bundle, step.state,
                    "finishing it" if step.state == "committed" else "undoing it")  # fmt: skip
        if step.state == "committed":
            return self._finish(step)
        interrupted = BundleError("interrupted", f"interrupted at {step.state} (a crash or power cut); undone")
        if step.state == "received" and not (self.work / "bundle").exists():
            self.journal.clear()  # it never left the inbox: it is tried again
            return None
        if step.state in ("received", "verified"):
            return self._finish(step, interrupted)
        self.slots.switch(step.previous or None)
        self._restore_profile()
        return self._finish(step, interrupted, outcome="rolled_back")

    def status(self) -> dict[str, Any]:
        return read_status(self.root)

    def _check_policy(self, manifest: Manifest, running: LoadedProfile) -> None:
        device = running.profile.device
        if manifest.hardware not in ("*", device.hardware) or manifest.device not in ("*", device.id):
            target = f"hardware {manifest.hardware}, device {manifest.device}"
            raise BundleError("wrong_target", f"the bundle is for {target}; this is {device.hardware}, {device.id}")
        if manifest.expires <= bundles.now():
            raise BundleError("expired", f"the bundle expired at {manifest.expires.isoformat()}")
        if Version(manifest.min_appliance_version) > Version(__version__):
            raise BundleError("too_new", f"the bundle needs appliance {manifest.min_appliance_version}; "
                              f"this is {__version__}")  # fmt: skip
        installed, tried = self.slots.installed_version(), self.slots.highest_tried()
        if manifest.version < installed:
            raise BundleError("downgrade", f"version {manifest.version} is older than the installed {installed}")
        if manifest.version <= max(installed, tried):
            raise BundleError("replay", f"version {manifest.version} was installed or tried already; "
                              f"a new bundle needs a version above {max(installed, tried)}")  # fmt: skip

    def _check_slot_in_use(self, running: LoadedProfile, new: LoadedProfile) -> None:
        """The slot an update is staged into must hold nothing either profile loads: the running
        one's model is what a rollback goes back to."""
        inactive = self.slots.path(self.slots.inactive())
        for loaded, which in ((running, "the running profile"), (new, "the new profile")):
            model = loaded.profile.detector.model.path
            if model and Path(model).is_relative_to(inactive):
                raise BundleError("invalid_config", f"{which} loads its model from slot {inactive.name}, which this "
                                  "update would overwrite; ship the model in the bundle (kind both)")  # fmt: skip

    def _profile_text(self, manifest: Manifest, payload: Path) -> str:
        path = payload / manifest.profile if manifest.profile else self.profile_path
        try:
            return read_regular_file(path, MAX_PROFILE_BYTES).decode("utf-8")
        except (FileReadError, UnicodeDecodeError) as error:
            raise BundleError("invalid_config", f"{path.name}: {error}") from None

    def _validated(self, text: str, shown_as: str | None) -> LoadedProfile:
        """The new profile, loaded where the device's profile is; its problems are shown in the
        bundle's file (`shown_as`) when the bundle brought the profile."""
        try:
            loaded = load_profile(self.profile_path, text)
            if issues := self.host.check(loaded):
                raise ProfileError(issues)
        except ProfileError as error:
            shown = "; ".join(str(self._in_bundle(issue, shown_as)) for issue in error.issues[:5])
            raise BundleError("invalid_config", f"the profile is invalid: {shown}") from None
        return loaded

    def _in_bundle(self, issue: ProfileIssue, shown_as: str | None) -> ProfileIssue:
        if shown_as is None or Path(issue.location.file).resolve() != self.profile_path.resolve():
            return issue
        return replace(issue, location=replace(issue.location, file=shown_as))

    def _stage(self, candidate: Candidate, slot: str) -> str:
        """The slot: the signed manifest, the profile it makes, and the payload under files/."""
        folder = self.slots.empty(slot)
        files = folder / "files"
        files.mkdir()
        for item in candidate.manifest.files:
            shutil.copyfile(candidate.payload / item.path, files / item.path)
        fsync_tree(files)
        (folder / "manifest.json").write_bytes(candidate.manifest.raw)
        text = candidate.text_for(files)
        (folder / "profile.yaml").write_text(text, encoding="utf-8")
        fsync_tree(folder)
        self.slots.rollback_profile.parent.mkdir(exist_ok=True)
        write_atomically(self.slots.rollback_profile, self.profile_path.read_text(encoding="utf-8"))
        return text

    def _roll_back(self, step: Step, why: BundleError) -> UpdateResult:
        log.warning("ota: rolling back %s: %s", step.bundle, why.message)
        step = self._record(step.to("rolling_back"))
        self.slots.switch(step.previous or None)
        if problems := self.host.apply(self.slots.rollback_profile.read_text(encoding="utf-8")):
            log.error("ota: the previous profile was refused on rollback (%s); writing it back as it was",
                      "; ".join(problems))  # fmt: skip
            self._restore_profile()
        return self._finish(step, why, outcome="rolled_back")

    def _restore_profile(self) -> None:
        if self.slots.rollback_profile.exists():
            saved = self.slots.rollback_profile.read_bytes()
            if not self.profile_path.exists() or self.profile_path.read_bytes() != saved:
                write_atomically(self.profile_path, saved.decode("utf-8"))

    def _finish(self, step: Step, error: BundleError | None = None, outcome: str | None = None) -> UpdateResult:
        manifest = self.slots.manifest(step.slot) if step.slot and error is None else None
        version = step.version if step.version is not None or error is None else error.version
        result = UpdateResult(
            bundle=step.bundle, outcome=outcome or ("rejected" if error else "installed"),  # type: ignore[arg-type]
            at=time.time(), version=version, kind=step.kind, reason=error.reason if error else None,
            message=error.message if error else f"installed in slot {step.slot}",
            description=manifest.description if manifest else "",
        )  # fmt: skip
        self._file_away(step.bundle, result)
        self.journal.add(result)
        shutil.rmtree(self.work, ignore_errors=True)
        self.journal.clear()
        level = logging.INFO if error is None else logging.WARNING
        log.log(level, "ota: %s %s: %s", step.bundle, result.outcome.replace("_", " "), result.message)
        return result

    def _take(self, bundle: Path) -> Path:
        """Move the bundle out of the inbox into the work folder, so it is processed once."""
        self._fresh(self.work)
        held = self.work / "bundle"
        shutil.move(bundle, held)
        return held

    def _file_away(self, name: str, result: UpdateResult) -> None:
        """Move the processed bundle to done/ or rejected/, a reason file beside a rejected one."""
        held, name = self.work / "bundle", safe_name(name)  # a journal from before names were made safe
        folder = self.inbox / ("done" if result.outcome == "installed" else "rejected")
        target = folder / name
        if target.exists() or target.with_name(f"{name}.reason").exists():
            target = folder / f"{name}.{int(result.at)}"
        if held.exists():
            shutil.move(held, target)
        if result.outcome != "installed":
            reason = f"{result.outcome}: {result.reason}: {result.message}\n"
            try:
                target.with_name(f"{target.name}.reason").write_text(reason, encoding="utf-8")
            except OSError as error:  # the history has it; nothing here may stop the device
                log.error("ota: cannot write the reason beside %s: %s", target.name, error.strerror or error)

    @staticmethod
    def _fresh(folder: Path) -> Path:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder


class FileHost:
    """No runtime running: the profile file is written, and the offline checks (validation, the
    model run on a frame) are all the health there is to check. `running` is the device's
    profile when a runtime may hold its data folder and ports (`ota verify`): those are the
    device's own, not the bundle's problem."""

    def __init__(self, profile_path: Path, running: LoadedProfile | None = None) -> None:
        self.profile_path = profile_path
        self.running = running

    def check(self, loaded: LoadedProfile) -> list[ProfileIssue]:
        return preflight(loaded, self.running)

    def apply(self, text: str) -> list[str]:
        write_atomically(self.profile_path, text, keep_previous=True)
        return []

    def watch(self, seconds: float) -> str | None:
        log.info("ota: no runtime is running, so no health window: the update is committed after its checks")
        return None


def safe_name(name: str) -> str:
    """The name a bundle is known by from the inbox on (journal, history, done/ and rejected/,
    logs): letters, digits, '.', '_' and '-' only, at most MAX_NAME characters; a name changed to
    fit keeps a short hash of the original, so two long names stay apart."""
    cleaned = SAFE_CHARACTERS.sub("_", name).lstrip(".") or "bundle"
    if cleaned == name and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{cleaned[: MAX_NAME - 9]}-{digest}"


def read_status(state_dir: Path) -> dict[str, Any]:
    """The installed slot and version, an update in progress, the last result and the history
    (newest first), read from the state folder without changing it."""
    slots, journal = Slots(state_dir), Journal(state_dir)
    current = slots.current()
    manifest = slots.manifest(current)
    history = journal.history()
    step = journal.read()
    return {
        "slot": current, "installed_version": manifest.version if manifest else 0,
        "installed_description": manifest.description if manifest else "",
        "in_progress": {"bundle": step.bundle, "state": step.state} if step else None,
        "last_result": update_result_json(history[-1]) if history else None,
        "history": [update_result_json(item) for item in reversed(history)],
    }  # fmt: skip
