"""Problems found in a profile, each tied to a file position and a JSON path."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

JsonPath = tuple[str | int, ...]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def format_path(path: JsonPath) -> str:
    """Render ('cameras', 0, 'distance') as 'cameras[0].distance'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True, order=True)
class Location:
    """A position in a profile file; line and column are 1-based, 0 when unknown."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class ProfileIssue:
    """One thing wrong with a profile."""

    location: Location
    path: JsonPath
    message: str

    def __str__(self) -> str:
        where = format_path(self.path)
        text = f"{self.location} {where}: {self.message}" if where else f"{self.location}: {self.message}"
        return _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}", text)  # one issue, one line


class ProfileError(Exception):
    """A profile that cannot be used, with every issue found in it."""

    def __init__(self, issues: Iterable[ProfileIssue]) -> None:
        self.issues: Sequence[ProfileIssue] = sorted(issues, key=lambda i: (i.location, format_path(i.path), i.message))
        super().__init__("\n".join(str(issue) for issue in self.issues))
