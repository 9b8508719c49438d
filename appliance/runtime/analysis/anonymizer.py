"""Hides every head that might be in an image before the image leaves the runtime.

Privacy fails closed: the boxes hidden are not only the people counted (confirmed tracks) but
everyone who might be there, namely every detection from `anonymizer.min_score` up (inside the
region of interest or not, of any size) and every track the tracker still holds, tentative or
lost, where it was last seen and where it is predicted now. Each head region grows by a margin
on every side, for boxes that sit a little off (a box cut at the shoulders, or one that reaches
above the head). Where `anonymizer.faces` is on, every face a face detector finds on the image
is hidden as well, grown by its own margin: a face whose person the detector missed does not
leave either."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import cv2

from appliance.config.model import AnonymizerConfig
from appliance.runtime.types import Box, Detection, Image

PIXEL_BLOCKS = 6  # a pixelated head is this many blocks wide
Region = tuple[int, int, int, int]


def boxes_to_hide(detections: Iterable[Detection], possible_people: Iterable[Box], min_score: float) -> list[Box]:
    """Every box whose head is hidden: detections from `min_score` up and the tracker's
    possible people."""
    return [d.box for d in detections if d.score >= min_score] + list(possible_people)


def head_region(box: Box, config: AnonymizerConfig, width: int, height: int) -> Region | None:
    """The top `head_fraction` of a person's box, grown by `margin` of the box's height above and
    below and of its width left and right, in whole pixels inside the image; None when empty."""
    x1, y1, x2, y2 = box
    grow_x, grow_y = (x2 - x1) * config.margin, (y2 - y1) * config.margin
    bottom = y1 + max(1.0, (y2 - y1) * config.head_fraction) + grow_y
    left, top = max(0, round(x1 - grow_x)), max(0, round(y1 - grow_y))
    right, low = min(width, round(x2 + grow_x)), min(height, round(bottom))
    return (left, top, right, low) if right > left and low > top else None


def face_region(face: Box, margin: float, width: int, height: int) -> Region | None:
    """A face box grown by `margin` of its larger side on every side, in whole pixels inside
    the image; None when empty."""
    x1, y1, x2, y2 = face
    grow = max(x2 - x1, y2 - y1) * margin
    left, top = max(0, math.floor(x1 - grow)), max(0, math.floor(y1 - grow))
    right, low = min(width, math.ceil(x2 + grow)), min(height, math.ceil(y2 + grow))
    return (left, top, right, low) if right > left and low > top else None


def hidden_regions(
    boxes: Sequence[Box], config: AnonymizerConfig, width: int, height: int, faces: Sequence[Box] = ()
) -> list[Region]:
    """The image regions `anonymize` hides for these person boxes and faces; none when it is
    disabled."""
    if not config.enabled:
        return []
    regions = [head_region(box, config, width, height) for box in boxes]
    regions += [face_region(face, config.faces.margin, width, height) for face in faces]
    return [region for region in regions if region is not None]


def anonymize(image: Image, boxes: Sequence[Box], config: AnonymizerConfig, faces: Sequence[Box] = ()) -> Image:
    """A copy of `image` with each head and face blurred or pixelated; the image itself when
    disabled."""
    if not config.enabled:
        return image
    result = image.copy()
    height, width = image.shape[:2]
    for x1, y1, x2, y2 in hidden_regions(boxes, config, width, height, faces):
        patch = result[y1:y2, x1:x2]
        if config.method == "pixelate":
            blocks = (PIXEL_BLOCKS, max(1, PIXEL_BLOCKS * (y2 - y1) // max(1, x2 - x1)))
            small = cv2.resize(patch, blocks, interpolation=cv2.INTER_AREA)
            result[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
        else:
            kernel = max(3, (max(x2 - x1, y2 - y1) // 2) | 1)
            result[y1:y2, x1:x2] = cv2.GaussianBlur(patch, (kernel, kernel), 0)
    return result
