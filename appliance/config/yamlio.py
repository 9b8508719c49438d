"""Round-trip YAML: read a profile file keeping comments and layout, know where every value is."""

from __future__ import annotations

import io
import itertools
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter

from appliance.config.errors import JsonPath, Location, ProfileError, ProfileIssue

MAX_PROFILE_BYTES = 1024 * 1024


@dataclass
class ProfileDocument:
    """One profile file as written: its round-trip data and the position of every key and value."""

    path: Path
    data: CommentedMap
    value_locations: dict[JsonPath, Location] = field(default_factory=dict)
    key_locations: dict[JsonPath, Location] = field(default_factory=dict)
    mapping_indent: int = 2
    sequence_indent: int = 4
    sequence_offset: int = 2
    explicit_start: bool = False

    @classmethod
    def load(cls, path: Path, text: str | None = None) -> ProfileDocument:
        """Read and parse `path` (or `text` as if it were in `path`); raise ProfileError naming
        every problem found."""
        text = _read_text(path) if text is None else _checked_text(str(path), text)
        try:
            data = _round_trip_yaml().load(text)
        except MarkedYAMLError as error:
            raise ProfileError([_syntax_issue(path, error)]) from None
        if data is None:
            raise ProfileError([ProfileIssue(Location(str(path), 1, 1), (), "profile is empty")])
        if not isinstance(data, CommentedMap):
            kind = "a list" if isinstance(data, CommentedSeq) else f"'{data}'"
            message = f"a profile must be a mapping of keys, got {kind}"
            raise ProfileError([ProfileIssue(Location(str(path), 1, 1), (), message)])
        mapping, sequence, offset = _guess_indentation(text)
        document = cls(path, data, mapping_indent=mapping, sequence_indent=sequence, sequence_offset=offset)
        document.explicit_start = _first_content_line(text).startswith("---")
        document.value_locations[()] = Location(str(path), data.lc.line + 1, data.lc.col + 1)
        document._index(data, ())
        return document

    def dumps(self) -> str:
        """The document as YAML text; unchanged data gives back the original bytes."""
        yaml = _round_trip_yaml()
        yaml.indent(mapping=self.mapping_indent, sequence=self.sequence_indent, offset=self.sequence_offset)
        yaml.explicit_start = self.explicit_start
        stream = io.StringIO()
        yaml.dump(self.data, stream)
        return stream.getvalue()

    def save(self, path: Path | None = None) -> None:
        """Write the document atomically to `path` (default: where it was read from)."""
        write_atomically(path or self.path, self.dumps())

    def _index(self, node: Any, path: JsonPath) -> None:
        file = str(self.path)
        if isinstance(node, CommentedMap):
            for key in node:
                child = (*path, str(key))
                key_line, key_col = node.lc.key(key)
                value_line, value_col = node.lc.value(key)
                self.key_locations[child] = Location(file, key_line + 1, key_col + 1)
                self.value_locations[child] = Location(file, value_line + 1, value_col + 1)
                self._index(node[key], child)
        elif isinstance(node, CommentedSeq):
            for index, item in enumerate(node):
                line, col = node.lc.item(index)
                self.value_locations[(*path, index)] = Location(file, line + 1, col + 1)
                self._index(item, (*path, index))


def previous_version(path: Path) -> Path:
    """Where `write_atomically` keeps the version a write replaced."""
    return path.with_name(f"{path.name}.previous")


def write_atomically(path: Path, text: str, *, keep_previous: bool = False) -> None:
    """Replace `path` with `text` so that a crash at any point leaves the old file or the new one,
    never a mix: a temporary file beside it, fsynced, renamed over it, the folder fsynced. With
    `keep_previous`, the replaced version stays in `previous_version(path)`."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    exists = path.exists()
    if exists:
        shutil.copymode(path, temporary)
    if keep_previous and exists:
        previous = previous_version(path)
        previous.unlink(missing_ok=True)
        os.link(path, previous)
    temporary.replace(path)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def dump_plain(data: Any) -> str:
    """Plain data as block YAML, short lists of scalars on one line."""
    yaml = _round_trip_yaml()
    yaml.indent(mapping=2, sequence=4, offset=2)
    stream = io.StringIO()
    yaml.dump(_flow_short_lists(data), stream)
    return stream.getvalue()


def _flow_short_lists(node: Any) -> Any:
    if isinstance(node, dict):
        mapping = CommentedMap()
        for key, value in node.items():
            mapping[key] = _flow_short_lists(value)
        return mapping
    if isinstance(node, list):
        sequence = CommentedSeq(_flow_short_lists(item) for item in node)
        if all(not isinstance(item, dict) for item in node):
            sequence.fa.set_flow_style()
        return sequence
    return node


def _round_trip_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.allow_duplicate_keys = False
    yaml.representer.add_representer(type(None), _represent_null)
    return yaml


def _represent_null(representer: RoundTripRepresenter, _data: None) -> ScalarNode:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _guess_indentation(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as the file first shows them."""
    mapping = sequence = offset = None
    lines = [line for line in text.splitlines() if line.strip() and line.lstrip()[0] != "#"]
    for parent, child in itertools.pairwise(lines):
        if not re.search(r":\s*(#.*)?$", parent):
            continue
        parent_column = _indentation(parent)
        child_column = _indentation(child)
        dash = re.match(r" *- +", child)
        if dash and sequence is None and child_column >= parent_column:
            offset = child_column - parent_column
            sequence = dash.end() - parent_column
        elif not dash and child_column > parent_column and mapping is None:
            mapping = child_column - parent_column
    mapping = mapping or 2
    return mapping, sequence or mapping + 2, 2 if offset is None else offset


def _first_content_line(text: str) -> str:
    lines = (line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return next(lines, "")


def _indentation(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _read_text(path: Path) -> str:
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_PROFILE_BYTES:
            message = f"file is {size} bytes; a profile may be at most {MAX_PROFILE_BYTES} bytes"
            raise ProfileError([ProfileIssue(Location(file), (), message)])
        raw = path.read_bytes()
    except OSError as error:
        raise ProfileError([ProfileIssue(Location(file), (), f"cannot read: {error.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        message = f"not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start})"
        raise ProfileError([ProfileIssue(Location(file, line, 1), (), message)]) from None
    return _checked_text(file, text)


def _checked_text(file: str, text: str) -> str:
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_PROFILE_BYTES:
        message = f"profile is {size} bytes; a profile may be at most {MAX_PROFILE_BYTES} bytes"
        raise ProfileError([ProfileIssue(Location(file), (), message)])
    tab_issues = _indentation_tabs(file, text)
    if tab_issues:
        raise ProfileError(tab_issues)
    return text


def _indentation_tabs(file: str, text: str) -> list[ProfileIssue]:
    issues = []
    for number, line in enumerate(text.splitlines(), start=1):
        indentation = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indentation:
            column = indentation.index("\t") + 1
            message = "tab character in indentation; YAML indents with spaces only"
            issues.append(ProfileIssue(Location(file, number, column), (), message))
    return issues


def _syntax_issue(path: Path, error: MarkedYAMLError) -> ProfileIssue:
    mark = error.problem_mark or error.context_mark
    location = Location(str(path), mark.line + 1, mark.column + 1) if mark else Location(str(path))
    if isinstance(error, DuplicateKeyError):
        first = error.context_mark
        key = str(error.problem).split('"')[1] if '"' in str(error.problem) else "?"
        where = f" in the mapping that starts at line {first.line + 1}" if first else ""
        return ProfileIssue(location, (), f"duplicate key '{key}'{where}")
    problem = error.problem or "invalid YAML"
    context = f" {error.context}" if error.context else ""
    return ProfileIssue(location, (), f"YAML syntax error: {problem}{context}")
