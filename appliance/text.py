"""Characters that must not reach a log line or a screen raw: line breaks and other controls,
which forge log lines, and the bidirectional marks, embeddings, overrides and isolates (U+202E
and its kin), which make a reader see text in another order than it is. Joiners stay: emoji
and several scripts need them."""

from __future__ import annotations

import re

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def escaped(text: str) -> str:
    """`text` on one line, each unsafe character written as its escape (`\\n`, `\\u202e`)."""
    return UNSAFE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def first_unsafe(text: str) -> str | None:
    """The first unsafe character of `text`, as U+XXXX; None when there is none."""
    match = UNSAFE.search(text)
    return f"U+{ord(match.group()):04X}" if match else None
