"""Box geometry shared by the dialogue builders and the evaluator.

Boxes are ``[x1, y1, x2, y2]`` in continuous coordinates (no +1 pixel term, docs/method.md section 7).
The model works in a square ``frame`` (840 px in the paper, docs/method.md section 3; the image size in the
embedded default): an image of ``width`` x ``height`` is resized to ``frame`` x ``frame`` without
keeping the aspect ratio, so x scales by ``frame / width`` and y by ``frame / height``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

Box = Sequence[float]


def round_half_up(value: float) -> int:
    """Round to the nearest integer, halves upwards (Python's ``round`` rounds halves to even)."""
    return math.floor(value + 0.5)


def int_box(box: Box) -> list[int]:
    """The integer box written into questions as ``bbox=[x1,y1,x2,y2]``."""
    return [round_half_up(v) for v in box]


def render_box(box: Box) -> str:
    """``bbox=[x1,y1,x2,y2]`` with integer coordinates, the citation format of docs/method.md section 2."""
    return "bbox=[{},{},{},{}]".format(*int_box(box))


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def to_frame(box: Box, width: int, height: int, frame: int) -> list[int]:
    """Original-pixel box -> integer box in the ``frame`` x ``frame`` model frame.

    Coordinates are clamped to the frame; a box that rounding would collapse keeps one pixel of
    extent so that x2 > x1 and y2 > y1 always hold.
    """
    sx, sy = frame / width, frame / height
    x1, y1, x2, y2 = (round_half_up(_clamp(v * s, 0, frame)) for v, s in zip(box, (sx, sy, sx, sy), strict=True))
    if x2 <= x1:
        x1, x2 = (x1, x1 + 1) if x1 < frame else (frame - 1, frame)
    if y2 <= y1:
        y1, y2 = (y1, y1 + 1) if y1 < frame else (frame - 1, frame)
    return [x1, y1, x2, y2]


def from_frame(box: Box, width: int, height: int, frame: int) -> list[float]:
    """Frame box -> original-pixel box (``W / frame``, ``H / frame``; docs/method.md section 3)."""
    sx, sy = width / frame, height / frame
    return [float(v * s) for v, s in zip(box, (sx, sy, sx, sy), strict=True)]


def point_to_frame(point: Sequence[float], width: int, height: int, frame: int) -> list[int]:
    """Original-pixel point -> integer point in the model frame, clamped to the frame."""
    x, y = point
    return [
        round_half_up(_clamp(x * frame / width, 0, frame)),
        round_half_up(_clamp(y * frame / height, 0, frame)),
    ]


def box_area(box: Box) -> float:
    """Area of a box; 0 for a degenerate one."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection_area(a: Box, b: Box) -> float:
    """Area of the overlap of two boxes (0 when they only share an edge or a corner)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes in continuous coordinates (docs/method.md section 7).

    The one IoU of the evaluator (AP@0.5) and the accuracy reward (R_base). Degenerate boxes
    (x2 <= x1 or y2 <= y1) have area 0, so their IoU with anything is 0; so is the IoU of input
    whose arithmetic overflows (a zero, negative or non-finite union, or a non-finite ratio), which
    model output in the accuracy reward can produce. The released reward's ``+1`` pixel IoU is a
    different function on purpose (``rewards.released_code``).
    """
    inter = intersection_area(a, b)
    union = box_area(a) + box_area(b) - inter
    if not union > 0:
        return 0.0
    iou = float(inter / union)
    return iou if math.isfinite(iou) else 0.0


def box_centre(box: Box) -> tuple[float, float]:
    """Centre point of a box."""
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def xywh_to_xyxy(bbox: Sequence[float]) -> list[float]:
    """COCO ``[x, y, w, h]`` -> ``[x1, y1, x2, y2]``."""
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def _inside_polygon(x: float, y: float, flat: Sequence[float]) -> bool:
    """Even-odd ray casting test of a point against a flat polygon ``[x, y, x, y, ...]``."""
    xs, ys = flat[0::2], flat[1::2]
    inside = False
    j = len(xs) - 1
    for i in range(len(xs)):
        if (ys[i] > y) != (ys[j] > y) and x < xs[i] + (y - ys[i]) * (xs[j] - xs[i]) / (ys[j] - ys[i]):
            inside = not inside
        j = i
    return inside


def compressed_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """COCO segmentation (polygons, uncompressed or compressed RLE) -> pycocotools compressed RLE.

    The one conversion of the bench builders and the evaluator; ``counts`` may be str or bytes.
    """
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    counts = segmentation["counts"]
    return {"size": segmentation["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def _encoded(segmentation: Any, box: Box, width: int, height: int) -> dict[str, Any]:
    """An annotation's segmentation as compressed RLE.

    Polygons with fewer than three points (a few exist in COCO) are dropped; an annotation left
    with none is represented by its box.
    """
    if isinstance(segmentation, list):
        polygons = [list(map(float, p)) for p in segmentation if len(p) >= 6]
        x1, y1, x2, y2 = box
        segmentation = polygons or [[x1, y1, x2, y1, x2, y2, x1, y2]]
    return compressed_rle(segmentation, height, width)


def segmentation_rle(segmentation: Any, box: Box, width: int, height: int) -> dict[str, Any]:
    """COCO segmentation -> one compressed RLE with ``counts`` as str, as written in the bench JSON."""
    rle = _encoded(segmentation, box, width, height)
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def point_inside(segmentation: Any, box: Box, width: int, height: int) -> list[float]:
    """A point inside the target (the record's ``points``): the box centre when it lies in the mask
    (always for convex shapes such as the synthetic ones), else the mask pixel centre nearest to it.
    """
    cx, cy = box_centre(box)
    polygons = segmentation if isinstance(segmentation, list) else []
    if any(_inside_polygon(cx, cy, polygon) for polygon in polygons if len(polygon) >= 6):
        return [round(cx, 2), round(cy, 2)]
    mask = mask_utils.decode(_encoded(segmentation, box, width, height))
    row, col = min(int(cy), height - 1), min(int(cx), width - 1)
    if mask[row, col]:
        return [round(cx, 2), round(cy, 2)]
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [round(cx, 2), round(cy, 2)]
    nearest = int(np.argmin((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2))
    return [float(xs[nearest]) + 0.5, float(ys[nearest]) + 0.5]
