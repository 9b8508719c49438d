"""A masked secret written back means "unchanged".

Readers of the API see every secret as `********` (a password, a token, the password in a camera
URL). A client that reads an item, changes one field and writes the item back sends those masks
back too. Each value that still reads exactly as the API showed it is replaced by the file's own
value (a `${env:...}` reference stays one); a mask anywhere else is refused, so a mask never
reaches the file."""

from __future__ import annotations

import json
from typing import Any

from ruamel.yaml.comments import CommentedMap

from appliance.config.secrets import MASK
from appliance.config.yamlio import merge_patch


def unmasked(patch: Any, shown: Any, stored: Any) -> Any:
    """`patch` with each masked value it sent back as shown replaced by the stored one."""
    if isinstance(patch, dict):
        return {key: unmasked(value, _item(shown, key), _item(stored, key)) for key, value in patch.items()}
    if isinstance(patch, list):
        return [unmasked(value, _item(shown, index), _item(stored, index)) for index, value in enumerate(patch)]
    if isinstance(patch, str) and MASK in patch and patch == shown and stored is not None:
        return stored
    return patch


def patch_keeping_secrets(target: CommentedMap, patch: dict[str, Any], shown: Any) -> None:
    """Merge-patch `target` (RFC 7396), masked values sent back as shown left as they are."""
    kept = unmasked(patch, shown, target)
    if MASK in json.dumps(kept, default=str):
        raise ValueError(f"the body holds a masked secret ({MASK}) where no stored value matches it; "
                         "put the value or a ${env:}/${file:} reference")  # fmt: skip
    merge_patch(target, kept)


def _item(container: Any, key: str | int) -> Any:
    """`container[key]` when there is one, else None."""
    if isinstance(container, dict):
        return container.get(key)
    if isinstance(container, list) and isinstance(key, int) and key < len(container):
        return container[key]
    return None
