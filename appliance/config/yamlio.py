"""Round-trip YAML: read a profile file keeping comments and layout, know where every value is."""

from __future__ import annotations

import io
import itertools
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, StreamMark
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, Event, NodeEvent, ScalarEvent
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.representer import RoundTripRepresenter

from appliance.config.errors import JsonPath, Location, ProfileError, ProfileIssue
from appliance.files import FileReadError, read_regular_file

MAX_PROFILE_BYTES = 1024 * 1024
MAX_DEPTH = 32  # nested mappings and lists; a profile needs about 6
MAX_ALIASES = 64
MAX_VALUES = 50_000  # values, aliases expanded: a "billion laughs" stops here; a profile needs a few thousand
MAX_NUMBER_LENGTH = 64  # characters in a plain scalar that looks like a number
_NUMBER = re.compile(r"[-+]?(\.?[0-9][0-9_]*)([.eE][-+0-9_eE]*)?|0[xo][0-9a-fA-F_]+")


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
            aliases = _check_structure(str(path), _round_trip_yaml().parse(text))
            data = _round_trip_yaml().load(text)
        except MarkedYAMLError as error:
            raise ProfileError([_syntax_issue(path, error)]) from None
        except ReaderError as error:
            raise ProfileError([_reader_issue(str(path), text, error)]) from None
        if aliases and _expanded_size(data, {}) > MAX_VALUES:
            message = f"aliases expand to more than {MAX_VALUES} values"
            raise ProfileError([ProfileIssue(aliases[0], (), message)])
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
        """Record where every key and value is; a position ruamel does not know (a tagged
        collection's items) falls back to the enclosing collection's."""
        file = str(self.path)
        here = self.value_locations.get(path, Location(file))
        fallback = (here.line - 1, here.column - 1)
        if isinstance(node, CommentedMap):
            for key in node:
                child = (*path, str(key))
                key_line, key_col = node.lc.key(key) or fallback
                value_line, value_col = node.lc.value(key) or fallback
                self.key_locations[child] = Location(file, key_line + 1, key_col + 1)
                self.value_locations[child] = Location(file, value_line + 1, value_col + 1)
                self._index(node[key], child)
        elif isinstance(node, CommentedSeq):
            for index, item in enumerate(node):
                line, col = node.lc.item(index) or fallback
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
    try:
        with temporary.open("w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError:
        temporary.unlink(missing_ok=True)  # a full disk leaves nothing behind, the old file intact
        raise
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
        raw = read_regular_file(path, MAX_PROFILE_BYTES)
    except FileReadError as problem:
        raise ProfileError([ProfileIssue(Location(file), (), f"cannot read the profile: it {problem}")]) from None
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


def _check_structure(file: str, events: Iterator[Event]) -> list[Location]:
    """Refuse what the YAML loader would choke on or expand without bound, from the parse events
    (cheap: nothing is built yet): deep nesting, many aliases, merge keys, huge numbers. Returns
    where the aliases are."""
    aliases: list[Location] = []
    values = 0
    open_collections: list[list[int]] = []  # per open collection: [is a mapping, items so far]

    def refuse(mark: StreamMark, message: str) -> ProfileError:
        return ProfileError([ProfileIssue(Location(file, mark.line + 1, mark.column + 1), (), message)])

    for event in events:
        if isinstance(event, CollectionEndEvent):
            open_collections.pop()
            continue
        if not isinstance(event, NodeEvent):
            continue
        is_key = bool(open_collections) and open_collections[-1][0] == 1 and open_collections[-1][1] % 2 == 0
        if open_collections:
            open_collections[-1][1] += 1
        values += 1
        if values > MAX_VALUES:
            raise refuse(event.start_mark, f"more than {MAX_VALUES} values")
        if isinstance(event, AliasEvent):
            aliases.append(Location(file, event.start_mark.line + 1, event.start_mark.column + 1))
            if len(aliases) > MAX_ALIASES:
                raise refuse(event.start_mark, f"more than {MAX_ALIASES} aliases")
        elif isinstance(event, ScalarEvent) and event.style is None:
            if is_key and event.value == "<<":
                raise refuse(
                    event.start_mark, "merge keys ('<<') are not supported; use extends: or write the keys out"
                )
            if len(event.value) > MAX_NUMBER_LENGTH and _NUMBER.fullmatch(event.value):
                raise refuse(event.start_mark, f"a number of {len(event.value)} characters is too long")
        elif isinstance(event, CollectionStartEvent):
            open_collections.append([int(event.__class__.__name__.startswith("Mapping")), 0])
            if len(open_collections) > MAX_DEPTH:
                raise refuse(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
    return aliases


def _expanded_size(node: Any, sizes: dict[int, int]) -> int:
    """How many values `node` holds with every alias expanded; shared nodes are counted once
    each and remembered, so this takes time in the size of the text, not of the expansion."""
    if not isinstance(node, dict | list):
        return 1
    if id(node) not in sizes:
        children = node.values() if isinstance(node, dict) else node
        sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


def _reader_issue(file: str, text: str, error: ReaderError) -> ProfileIssue:
    before = text[: error.position]
    line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
    character = error.character if isinstance(error.character, int) else ord(str(error.character)[:1] or "?")
    return ProfileIssue(Location(file, line, column), (), f"character U+{character:04X} is not allowed in YAML")


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


def merge_patch(target: CommentedMap, patch: dict[str, Any]) -> None:
    """RFC 7396 JSON merge patch into a YAML mapping, keeping its comments: null removes a key."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = value
