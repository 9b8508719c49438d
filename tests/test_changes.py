"""The one profile-change path: validated like `appliance validate`, written atomically with
comments kept and the previous version beside it, applied one change at a time, nothing changed
when a change is invalid or based on a stale revision."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import wait
from pathlib import Path

import pytest
from ruamel.yaml.comments import CommentedMap

from appliance.config import LoadedProfile, load_profile
from appliance.config.edits import AddEntry, ProfileEdit
from appliance.config.yamlio import previous_version
from appliance.runtime.changes import ChangeOutcome, ProfileChanges, ValidatedChange
from tests.conftest import REPO

PROFILE = """\
# the lobby appliance
device: {id: lobby}   # keep this id stable
cameras:
  - id: door          # the front door
    source: door.avi
"""


class Applier:
    """Stands in for the supervisor's loop: applies validated changes as they come."""

    def __init__(self, changes: ProfileChanges) -> None:
        self.changes = changes
        self.applied: list[ValidatedChange] = []
        self.generation = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            self.changes.apply_pending(self._apply)

    def _apply(self, change: ValidatedChange) -> ChangeOutcome:
        revision = change.revision
        if change.unchanged:
            return ChangeOutcome(True, self.generation, revision, unchanged=True)
        if change.loaded is None:
            return ChangeOutcome(False, self.generation, revision, errors=change.errors, conflict=change.conflict)
        self.generation += 1
        self.applied.append(change)
        return ChangeOutcome(True, self.generation, revision)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(PROFILE)
    return path


@pytest.fixture
def changes(profile: Path) -> Iterator[tuple[ProfileChanges, Applier]]:
    path_changes = ProfileChanges(profile, running=lambda: load_profile(profile))
    path_changes.start()
    applier = Applier(path_changes)
    yield path_changes, applier
    applier.stop()
    path_changes.close()


def add_camera(camera_id: str) -> AddEntry:
    return AddEntry("cameras", {"id": camera_id, "source": f"{camera_id}.avi"})


class Broken(ProfileEdit):
    """An edit that fails as a bug would: `nested` builds a document thousands deep (a body
    nested so once reached the YAML writer); else it raises `error`."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        if self.error is not None:
            raise self.error
        deep: CommentedMap = CommentedMap()
        document["device"]["name"] = deep
        for _ in range(5000):
            deep["x"] = CommentedMap()
            deep = deep["x"]

    def describe(self) -> str:
        return "break"


def test_a_valid_edit_is_written_with_comments_kept_and_the_previous_version_beside_it(
    profile: Path, changes: tuple[ProfileChanges, Applier]
) -> None:
    path_changes, applier = changes
    outcome = path_changes.edit(add_camera("yard"), source="api").result(10)
    assert outcome.applied and outcome.generation == 1 and outcome.revision == path_changes.revision()
    text = profile.read_text()
    assert text.startswith(PROFILE) and "- id: yard" in text  # every comment and the layout kept
    assert previous_version(profile).read_text() == PROFILE
    assert [c.id for c in load_profile(profile).profile.cameras] == ["door", "yard"]
    assert applier.applied[0].source == "api"


def test_no_change_can_end_the_change_path(profile: Path, changes: tuple[ProfileChanges, Applier]) -> None:
    """An edit that blows the stack (a body nested thousands deep once reached the YAML writer)
    or raises anything else is refused alone; the next change is applied as usual."""
    path_changes, _ = changes
    before = profile.read_bytes()
    for edit in (Broken(), Broken(ZeroDivisionError())):
        outcome = path_changes.edit(edit, source="api").result(30)
        assert not outcome.applied and "cannot change the profile" in str(outcome.errors[0])
    assert profile.read_bytes() == before
    assert path_changes.edit(add_camera("yard"), source="api").result(10).applied


def test_an_invalid_change_leaves_the_file_byte_identical_and_returns_every_problem(
    profile: Path, changes: tuple[ProfileChanges, Applier]
) -> None:
    path_changes, applier = changes
    before = profile.read_bytes()
    broken = PROFILE.replace("source: door.avi", "sauce: door.avi") + "metrics: {listen: 'nowhere'}\n"
    outcome = path_changes.replace(broken, source="api").result(10)
    assert not outcome.applied and not applier.applied
    messages = [str(issue) for issue in outcome.errors]
    assert any("cameras[0].sauce: unknown key 'sauce'" in m for m in messages)
    assert any("cameras[0].source: required key is missing" in m for m in messages)
    assert any(m.startswith(f"{profile}:6:") and "metrics.listen" in m for m in messages)  # as `validate` says
    assert profile.read_bytes() == before and not previous_version(profile).exists()


def test_concurrent_changes_are_applied_one_after_the_other_and_none_is_lost(
    profile: Path, changes: tuple[ProfileChanges, Applier]
) -> None:
    path_changes, _applier = changes
    futures = []
    barrier = threading.Barrier(6)

    def submit(camera_id: str) -> None:
        barrier.wait()
        futures.append(path_changes.edit(add_camera(camera_id), source="api"))

    threads = [threading.Thread(target=submit, args=(f"cam-{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait(futures, timeout=30)
    assert sorted(f.result().generation for f in futures) == [1, 2, 3, 4, 5, 6]
    cameras = {c.id for c in load_profile(profile).profile.cameras}
    assert cameras == {"door", *(f"cam-{i}" for i in range(6))}


def test_a_change_based_on_a_stale_revision_is_refused(profile: Path, changes: tuple[ProfileChanges, Applier]) -> None:
    path_changes, _applier = changes
    revision = path_changes.revision()
    assert path_changes.edit(add_camera("first"), source="api", revision=revision).result(10).applied
    stale = path_changes.edit(add_camera("second"), source="api", revision=revision).result(10)
    assert stale.conflict and not stale.applied and "changed since it was read" in str(stale.errors[0])
    assert "second" not in profile.read_text()


def test_a_reload_applies_the_file_as_it_is(profile: Path, changes: tuple[ProfileChanges, Applier]) -> None:
    path_changes, applier = changes
    profile.write_text(PROFILE.replace("door.avi", "door2.avi"))
    outcome = path_changes.reload().result(10)
    assert outcome.applied and applier.applied[0].source == "reload"
    assert not previous_version(profile).exists()  # nothing written: the operator wrote the file


def test_a_failing_edit_changes_nothing(profile: Path, changes: tuple[ProfileChanges, Applier]) -> None:
    path_changes, _ = changes
    outcome = path_changes.edit(Broken(KeyError("areas")), source="api").result(10)
    assert not outcome.applied and "cannot change the profile" in str(outcome.errors[0])
    assert profile.read_text() == PROFILE


def test_changes_after_close_are_refused(profile: Path) -> None:
    path_changes = ProfileChanges(profile, running=lambda: load_profile(profile))
    path_changes.start()
    path_changes.close()
    with pytest.raises(RuntimeError, match="stopping"):
        path_changes.reload().result(5)


def test_a_write_the_disk_refuses_leaves_the_old_profile_and_no_temporary_file(tmp_path: Path) -> None:
    """A real failing write: the writer runs under a file-size limit (RLIMIT_FSIZE) that the new
    text exceeds, as a full disk would refuse it."""
    profile = tmp_path / "p.yaml"
    profile.write_text("device: {id: old}\n")
    script = (
        "import resource, sys\nfrom pathlib import Path\nfrom appliance.config.yamlio import write_atomically\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "try:\n    write_atomically(Path(sys.argv[1]), 'device: {id: new}\\n' + '#' * 5000, keep_previous=True)\n"
        "except OSError as error:\n    print(error.strerror)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(profile)], capture_output=True, text=True, check=True,
                            cwd=REPO)  # fmt: skip
    assert "File too large" in result.stdout
    assert profile.read_text() == "device: {id: old}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]


def test_each_change_is_loaded_once_and_a_reload_of_its_own_write_loads_nothing(
    profile: Path, changes: tuple[ProfileChanges, Applier], caplog: pytest.LogCaptureFixture
) -> None:
    """The watcher sees every write of the change path: a reload of files as the path wrote
    them is answered unchanged without a load; a write by someone else is loaded."""
    path_changes, applier = changes
    caplog.set_level(logging.INFO, logger="appliance.runtime.changes")
    assert path_changes.edit(add_camera("yard"), source="api").result(10).applied
    assert path_changes.reload("file").result(10).unchanged
    assert _loads(caplog) == ["api"]
    profile.write_text(profile.read_text().replace("door.avi", "door2.avi"))
    assert path_changes.reload("file").result(10).applied
    assert _loads(caplog) == ["api", "file"] and len(applier.applied) == 2


def _loads(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.args[0] for record in caplog.records if record.msg.startswith("profile loaded")]  # type: ignore[index]
