"""Checks every value of a profile, whatever the schema says of it: numbers are finite, text has
no control or bidirectional characters (appliance/text.py) and is of bounded length. JSON Schema
cannot say these: NaN passes every `minimum`, and Python's `$` in a pattern matches before a
final newline."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from appliance.config.errors import JsonPath, ProfileIssue
from appliance.config.merge import MergedProfile
from appliance.text import first_unsafe

MAX_TEXT_LENGTH = 4096


def value_issues(merged: MergedProfile) -> list[ProfileIssue]:
    """One issue per value (or key) that no profile key may hold."""
    issues = []
    for path, message, is_key in _problems(merged.data, ()):
        issues.append(ProfileIssue(merged.location(path, key=is_key), path, message))
    return issues


def _problems(node: Any, path: JsonPath) -> Iterator[tuple[JsonPath, str, bool]]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*path, key)
            if problem := _text_problem(str(key)):
                yield here, f"key {problem}", True
            yield from _problems(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _problems(item, (*path, index))
    elif isinstance(node, float) and not math.isfinite(node):
        yield path, "must be a finite number, not NaN or infinity", False
    elif isinstance(node, str) and (problem := _text_problem(node)):
        yield path, problem, False


def _text_problem(text: str) -> str | None:
    if len(text) > MAX_TEXT_LENGTH:
        return f"is {len(text)} characters long; at most {MAX_TEXT_LENGTH} are allowed"
    if character := first_unsafe(text):
        return f"contains a control or bidirectional character ({character})"
    return None
