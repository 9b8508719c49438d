"""The named edits of the profile file. Every change a transport makes to the profile (the API,
MQTT, later the console) is one of these, applied by the profile-change path to the file's
document, comments and layout kept.

Each edit checks what it needs against the running profile and refuses with a code a transport
can answer with (`EditError`). One rule holds for every edit of a camera or an area: an entry
the running profile has but this file does not is defined in a profile this one extends, and is
changed there."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from appliance.config.loader import LoadedProfile
from appliance.config.secrets import MASK
from appliance.config.unmask import patch_keeping_secrets

Collection = Literal["cameras", "areas"]
PlaceKind = Literal["zones", "lines"]
Section = Literal["detector", "tracker", "motion", "distancing", "anonymizer"]


class EditError(ValueError):
    """An edit that cannot apply; `code` says why: not_found, defined_elsewhere, exists,
    id_changed or masked_secret."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ProfileEdit(ABC):
    """A change of the profile file's document, checked against the running profile."""

    @abstractmethod
    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        """Edit `document` in place, or raise EditError."""

    @abstractmethod
    def describe(self) -> str:
        """What it does, for the log."""


@dataclass(frozen=True)
class SetCameraEnabled(ProfileEdit):
    camera_id: str
    enabled: bool

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        _camera_in_file(document, running, self.camera_id)["enabled"] = self.enabled

    def describe(self) -> str:
        return f"{'enable' if self.enabled else 'disable'} camera '{self.camera_id}'"


@dataclass(frozen=True)
class SetCalibration(ProfileEdit):
    """Calibrate a camera: its distance method becomes `calibrated`, with these points."""

    camera_id: str
    points: tuple[tuple[tuple[float, float], tuple[float, float]], ...]  # (image px, floor cm) pairs

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        camera = _camera_in_file(document, running, self.camera_id)
        if not isinstance(camera.get("distance"), dict):
            camera["distance"] = CommentedMap()
        camera["distance"]["method"] = "calibrated"
        camera["distance"]["calibration"] = [
            {"image": list(image), "floor": list(floor)} for image, floor in self.points
        ]

    def describe(self) -> str:
        return f"calibrate camera '{self.camera_id}' ({len(self.points)} points)"


@dataclass(frozen=True)
class SetRoi(ProfileEdit):
    """Count only people whose feet are inside the polygon (pixels); None: everywhere."""

    camera_id: str
    polygon: tuple[tuple[float, float], ...] | None

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        polygon = None if self.polygon is None else [list(point) for point in self.polygon]
        _camera_in_file(document, running, self.camera_id)["roi"] = polygon

    def describe(self) -> str:
        return f"set the region of interest of camera '{self.camera_id}'"


@dataclass(frozen=True)
class AddEntry(ProfileEdit):
    kind: Collection
    entry: dict[str, Any]

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        _refuse_masks(self.entry)
        item_id = self.entry.get("id")
        if any(entry.get("id") == item_id for entry in running.data.get(self.kind) or ()):
            raise EditError("exists", f"{self.kind[:-1]} '{item_id}' exists already")
        _entries(document, self.kind).append(self.entry)

    def describe(self) -> str:
        return f"add {self.kind[:-1]} '{self.entry.get('id')}'"


@dataclass(frozen=True)
class PatchEntry(ProfileEdit):
    """A JSON merge patch of one camera or area; masked secrets sent back as shown stay."""

    kind: Collection
    item_id: str
    patch: dict[str, Any]

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        _refuse_id_change(self.patch, self.item_id)
        index = _index_in_file(document, running, self.kind, self.item_id)
        shown = next(entry for entry in running.masked_data()[self.kind] if entry["id"] == self.item_id)
        _patch(_entries(document, self.kind)[index], self.patch, shown)

    def describe(self) -> str:
        return f"change {self.kind[:-1]} '{self.item_id}'"


@dataclass(frozen=True)
class RemoveEntry(ProfileEdit):
    kind: Collection
    item_id: str

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        _entries(document, self.kind).pop(_index_in_file(document, running, self.kind, self.item_id))

    def describe(self) -> str:
        return f"remove {self.kind[:-1]} '{self.item_id}'"


@dataclass(frozen=True)
class AddPlace(ProfileEdit):
    """A zone or a line added to a camera."""

    camera_id: str
    kind: PlaceKind
    entry: dict[str, Any]

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        places = _places(document, running, self.camera_id, self.kind)
        item_id = self.entry.get("id")
        if any(isinstance(p, dict) and p.get("id") == item_id for p in places):
            raise EditError("exists", f"camera '{self.camera_id}' has a {self.kind[:-1]} '{item_id}' already")
        places.append(self.entry)

    def describe(self) -> str:
        return f"add {self.kind[:-1]} '{self.entry.get('id')}' to camera '{self.camera_id}'"


@dataclass(frozen=True)
class PatchPlace(ProfileEdit):
    """A JSON merge patch of one of a camera's zones or lines."""

    camera_id: str
    kind: PlaceKind
    place_id: str
    patch: dict[str, Any]

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        _refuse_id_change(self.patch, self.place_id)
        places = _places(document, running, self.camera_id, self.kind)
        _patch(places[_place_index(places, self.camera_id, self.kind, self.place_id)], self.patch, None)

    def describe(self) -> str:
        return f"change {self.kind[:-1]} '{self.place_id}' of camera '{self.camera_id}'"


@dataclass(frozen=True)
class RemovePlace(ProfileEdit):
    camera_id: str
    kind: PlaceKind
    place_id: str

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        places = _places(document, running, self.camera_id, self.kind)
        places.pop(_place_index(places, self.camera_id, self.kind, self.place_id))

    def describe(self) -> str:
        return f"remove {self.kind[:-1]} '{self.place_id}' of camera '{self.camera_id}'"


@dataclass(frozen=True)
class PatchProfile(ProfileEdit):
    """A JSON merge patch of the whole profile file, or of one of its sections."""

    patch: dict[str, Any]
    section: Section | None = None

    def apply(self, document: CommentedMap, running: LoadedProfile) -> None:
        shown = running.masked_data()
        if self.section is None:
            _patch(document, self.patch, shown)
            return
        if not isinstance(document.get(self.section), dict):
            document[self.section] = CommentedMap()
        _patch(document[self.section], self.patch, shown.get(self.section))

    def describe(self) -> str:
        return f"patch the {self.section or 'profile'}"


def _patch(target: CommentedMap, patch: dict[str, Any], shown: Any) -> None:
    try:
        patch_keeping_secrets(target, patch, shown)
    except ValueError as error:
        raise EditError("masked_secret", str(error)) from None


def _refuse_id_change(patch: dict[str, Any], item_id: str) -> None:
    if patch.get("id", item_id) != item_id:
        raise EditError("id_changed", "an id cannot change; create a new entry and delete this one")


def _refuse_masks(entry: dict[str, Any]) -> None:
    if MASK in json.dumps(entry, default=str):
        raise EditError("masked_secret", f"the body holds a masked secret ({MASK}); put the value or a "
                          "${env:}/${file:} reference")  # fmt: skip


def _entries(document: CommentedMap, kind: Collection) -> CommentedSeq:
    if not isinstance(document.get(kind), list):
        document[kind] = CommentedSeq()
    entries: CommentedSeq = document[kind]
    return entries


def _places(document: CommentedMap, running: LoadedProfile, camera_id: str, kind: PlaceKind) -> CommentedSeq:
    camera = _camera_in_file(document, running, camera_id)
    if not isinstance(camera.get(kind), list):
        camera[kind] = CommentedSeq()
    places: CommentedSeq = camera[kind]
    return places


def _place_index(places: CommentedSeq, camera_id: str, kind: PlaceKind, place_id: str) -> int:
    for index, place in enumerate(places):
        if isinstance(place, dict) and place.get("id") == place_id:
            return index
    raise EditError("not_found", f"camera '{camera_id}' has no {kind[:-1]} '{place_id}'")


def _camera_in_file(document: CommentedMap, running: LoadedProfile, camera_id: str) -> CommentedMap:
    camera: CommentedMap = _entries(document, "cameras")[_index_in_file(document, running, "cameras", camera_id)]
    return camera


def _index_in_file(document: CommentedMap, running: LoadedProfile, kind: Collection, item_id: str) -> int:
    """Where the entry is in this file: the one rule for entries of cameras and areas."""
    for index, entry in enumerate(document.get(kind) or ()):
        if isinstance(entry, dict) and entry.get("id") == item_id:
            return index
    if any(entry.get("id") == item_id for entry in running.data.get(kind) or ()):
        raise EditError("defined_elsewhere", f"{kind[:-1]} '{item_id}' is defined in a profile this one extends; "
                          "change it there")  # fmt: skip
    raise EditError("not_found", f"no {kind[:-1]} '{item_id}'")
