"""Hides every person's head on images that leave the runtime."""

from __future__ import annotations

from collections.abc import Sequence

import cv2

from appliance.config.model import AnonymizerConfig
from appliance.runtime.types import Box, Image

PIXEL_BLOCKS = 6  # a pixelated head is this many blocks wide


def head_region(box: Box, head_fraction: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The top part of a person's box, in whole pixels inside the image; None when empty."""
    x1, y1, x2, y2 = (round(v) for v in box)
    x1, x2 = max(0, x1), min(width, x2)
    top = max(0, y1)
    bottom = min(height, y1 + max(1, round((y2 - y1) * head_fraction)))
    return (x1, top, x2, bottom) if x2 > x1 and bottom > top else None


def anonymize(image: Image, boxes: Sequence[Box], config: AnonymizerConfig) -> Image:
    """A copy of `image` with each head blurred or pixelated; the image itself when disabled."""
    if not config.enabled or not boxes:
        return image
    result = image.copy()
    height, width = image.shape[:2]
    for box in boxes:
        region = head_region(box, config.head_fraction, width, height)
        if region is None:
            continue
        x1, y1, x2, y2 = region
        patch = result[y1:y2, x1:x2]
        if config.method == "pixelate":
            blocks = (PIXEL_BLOCKS, max(1, PIXEL_BLOCKS * (y2 - y1) // max(1, x2 - x1)))
            small = cv2.resize(patch, blocks, interpolation=cv2.INTER_AREA)
            result[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
        else:
            kernel = max(3, (max(x2 - x1, y2 - y1) // 2) | 1)
            result[y1:y2, x1:x2] = cv2.GaussianBlur(patch, (kernel, kernel), 0)
    return result
