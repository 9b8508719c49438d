"""Pure image and box arithmetic shared by the detector backends."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from appliance.runtime.types import Detection, Image

Floats = npt.NDArray[np.float32]
PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class Placement:
    """How a frame was placed into the network input: input = frame * scale + offset."""

    frame_width: int
    frame_height: int
    scale_x: float
    scale_y: float
    offset_x: float = 0.0
    offset_y: float = 0.0

    def to_frame(self, boxes: Floats) -> Floats:
        """Map x1, y1, x2, y2 rows from input pixels back to frame pixels."""
        offset = np.array([self.offset_x, self.offset_y] * 2, dtype=np.float32)
        scale = np.array([self.scale_x, self.scale_y] * 2, dtype=np.float32)
        return ((boxes - offset) / scale).astype(np.float32)


def letterbox(image: Image, width: int, height: int, *, centered: bool) -> tuple[Image, Placement]:
    """Resize keeping the aspect ratio and pad to width x height with grey (114)."""
    frame_h, frame_w = image.shape[:2]
    scale = min(width / frame_w, height / frame_h)
    new_w, new_h = round(frame_w * scale), round(frame_h * scale)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    left = (width - new_w) // 2 if centered else 0
    top = (height - new_h) // 2 if centered else 0
    canvas = cv2.copyMakeBorder(
        resized,
        top,
        height - new_h - top,
        left,
        width - new_w - left,
        cv2.BORDER_CONSTANT,
        value=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
    )
    return cast(Image, canvas), Placement(frame_w, frame_h, scale, scale, left, top)


def stretch(image: Image, width: int, height: int) -> tuple[Image, Placement]:
    """Plain resize to width x height."""
    frame_h, frame_w = image.shape[:2]
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return cast(Image, resized), Placement(frame_w, frame_h, width / frame_w, height / frame_h)


def pixel_table(
    scale: float, offset: float, dtype: npt.DTypeLike, quantization: tuple[float, int] | None = None
) -> npt.NDArray[np.generic]:
    """What each 0..255 pixel value becomes in a network input: `pixel * scale + offset`, then
    quantized for integer inputs. Applied with cv2.LUT, one pass over the image."""
    real = np.arange(256, dtype=np.float64) * scale + offset
    if np.issubdtype(dtype, np.floating):
        return real.astype(dtype)
    if quantization is None:
        raise ValueError(f"an input of type {np.dtype(dtype).name} needs quantization parameters")
    step, zero_point = quantization
    limits = np.iinfo(dtype)
    return np.clip(np.round(real / step + zero_point), limits.min, limits.max).astype(dtype)


def nchw_tensor(canvas: Image, rgb: bool, table: npt.NDArray[np.generic], out: Floats) -> Floats:
    """A BGR canvas as a (1, 3, H, W) tensor in `out`, through the pixel table."""
    channels = cv2.split(canvas)
    for index, channel in enumerate(channels[::-1] if rgb else channels):
        cv2.LUT(channel, cast(Floats, table), dst=out[0, index])
    return out


def nhwc_tensor(canvas: Image, rgb: bool, table: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """A BGR canvas as a (1, H, W, 3) tensor, through the pixel table."""
    pixels = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB) if rgb else canvas
    return cast(npt.NDArray[np.generic], cv2.LUT(pixels, cast(Floats, table))[None])


def xywh_to_xyxy(boxes: Floats) -> Floats:
    """Centre x, centre y, width, height rows to x1, y1, x2, y2."""
    half = boxes[:, 2:4] / 2
    return np.concatenate([boxes[:, 0:2] - half, boxes[:, 0:2] + half], axis=1)


def non_max_suppression(boxes: Floats, scores: Floats, iou: float) -> npt.NDArray[np.intp]:
    """Indices of the boxes kept, best first."""
    if len(boxes) == 0:
        return np.empty(0, dtype=np.intp)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, iou)
    return np.asarray(kept, dtype=np.intp).reshape(-1)


def decode_yolov8(output: Floats, class_id: int, min_score: float) -> tuple[Floats, Floats]:
    """(1, 4 + classes, anchors) rows of cx, cy, w, h and class scores -> boxes, scores."""
    rows = output.reshape(output.shape[-2], output.shape[-1])
    scores = rows[4 + class_id]
    keep = scores >= min_score
    return xywh_to_xyxy(rows[:4, keep].T), scores[keep]


def decode_yolox(output: Floats, width: int, height: int, class_id: int, min_score: float) -> tuple[Floats, Floats]:
    """(1, anchors, 5 + classes) raw YOLOX head -> boxes, scores (objectness x class score)."""
    rows = output.reshape(output.shape[-2], output.shape[-1])
    scores = rows[:, 4] * rows[:, 5 + class_id]
    keep = scores >= min_score
    grid, strides = _yolox_grid(width, height)
    centres = (rows[keep, 0:2] + grid[keep]) * strides[keep]
    sizes = np.exp(rows[keep, 2:4]) * strides[keep]
    return xywh_to_xyxy(np.concatenate([centres, sizes], axis=1)), scores[keep]


@cache
def _yolox_grid(width: int, height: int) -> tuple[Floats, Floats]:
    cells, strides = [], []
    for stride in (8, 16, 32):
        ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        cells.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        strides.append(np.full((cells[-1].shape[0], 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def decode_ssd_rows(output: Floats, label: int, min_score: float) -> tuple[Floats, Floats]:
    """(1, 1, N, 7) rows [image, label, score, x1, y1, x2, y2], normalized -> boxes, scores."""
    rows = output.reshape(-1, 7)
    keep = (rows[:, 1] == label) & (rows[:, 2] >= min_score)
    return rows[keep, 3:7].astype(np.float32), rows[keep, 2].astype(np.float32)


def to_detections(boxes: Floats, scores: Floats, class_id: int, placement: Placement) -> list[Detection]:
    """Boxes in input pixels as detections in frame pixels, clipped to the frame."""
    width, height = placement.frame_width, placement.frame_height
    clipped = np.clip(placement.to_frame(boxes), 0, [width, height, width, height])
    return [
        Detection((float(b[0]), float(b[1]), float(b[2]), float(b[3])), float(s), class_id)
        for b, s in zip(clipped, scores, strict=True)
        if b[2] > b[0] and b[3] > b[1]
    ]
