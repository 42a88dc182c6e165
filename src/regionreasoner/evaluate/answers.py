"""How each evaluated model's answer is read: a registry of answer formats, chosen per model in the config.

Tables 1-2 compare models that answer in different formats and coordinate systems, each scored
in the papers by the code released with it. A format here gives, for one completion:

- ``objects``: the valid objects (``bbox_2d`` with x1 < x2 and y1 < y2, ``point_2d`` or None) in
  the model's own coordinates; they are scaled to original pixels and scored (``evaluate.metrics``);
- ``raw_boxes`` and ``to_pixels``: the boxes as the authors' code reads them (invalid ones
  included, nothing where their reader raises) and their integer arithmetic from model
  coordinates to original pixels; the multi-round evaluator cites the first of them in a later
  question, as their evaluator does (``authors_boxes``);
- ``coordinates``: ``frame`` (the 840x840 frame the image is resized to; the RegionReasoner,
  VisionReasoner and Seg-Zero protocol), ``pixels`` (the image at its own resolution, boxes taken
  as original pixels: the authors' Qwen2.5-VL protocol) or ``thousandths`` (the image at its own
  resolution, boxes normalised to 0-1000: the authors' Qwen2-VL protocol).

Sources (read for their behaviour): lmsdss/RegionReasoner @ f34dbfcbc9871121bcb5fe48c26da61b828aa4e6
test/vision_reasoner/models/vision_reasoner_model.py (``extract_bbox_points_think``) and
test/vision_reasoner/models/qwen_vl.py (``extract_json_from_response``, ``segment_objects``);
dvlab-research/Seg-Zero @ 42a33455283ba041a3099cf154a708116f300cec evaluation_scripts/evaluation.py
(``extract_bbox_points_think``). Every reader is linear in the completion and never raises.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from regionreasoner.rewards.parsing import MAX_OBJECTS, extract_tag, parse_answer, valid_box, valid_point

Coordinates = Literal["frame", "pixels", "thousandths"]
Objects = list[dict[str, Any]]


@dataclass(frozen=True)
class AnswerFormat:
    """One model family's answer format (see the module docstring)."""

    name: str
    coordinates: Coordinates
    objects: Callable[[str], Objects]
    raw_boxes: Callable[[str], list[list[float]]]
    to_pixels: Callable[[float, float], int]
    well_formed: Callable[[str, Objects], bool]

    def authors_box(self, box: list[float], x_factor: float, y_factor: float) -> list[int]:
        """One model box in original pixels, with the authors' integer arithmetic."""
        return [self.to_pixels(v, f) for v, f in zip(box, (x_factor, y_factor, x_factor, y_factor), strict=True)]

    def authors_boxes(self, text: str, x_factor: float, y_factor: float) -> list[list[int]]:
        """Every box the authors' code reads from ``text``, in original pixels as it computes them."""
        return [self.authors_box(box, x_factor, y_factor) for box in self.raw_boxes(text)]

    @property
    def native_image(self) -> bool:
        """Whether the model sees the image at its own resolution (else resized to the frame)."""
        return self.coordinates != "frame"

    def factors(self, width: int, height: int, frame: int) -> tuple[float, float]:
        """Model coordinates -> original pixels, computed as the authors compute them."""
        if self.coordinates == "frame":
            return width / frame, height / frame
        if self.coordinates == "thousandths":
            return width / 1000, height / 1000
        return 1.0, 1.0


def _json(payload: str | None) -> Any:
    if payload is None:
        return None
    try:
        return json.loads(payload)
    except Exception:  # JSONDecodeError, RecursionError on deep nesting, int digit limit
        return None


def _number(value: Any) -> bool:
    """A value the authors' arithmetic accepts (``v * factor``) and that is finite."""
    if isinstance(value, bool):
        return True
    return isinstance(value, (int, float)) and math.isfinite(float(value))


def _first_four(value: Any) -> list[float] | None:
    """``value[0..3]`` as the authors index it (a longer list is cut), else None."""
    if not isinstance(value, list) or len(value) < 4 or not all(_number(v) for v in value[:4]):
        return None
    return [float(v) for v in value[:4]]


# ---- RegionReasoner / VisionReasoner: <answer>[{"bbox_2d": [...], "point_2d": [...]}, ...]</answer> --------


def _tagged_raw_boxes(text: str) -> list[list[float]]:
    """Every item's ``bbox_2d``; all or nothing, as their list comprehension.

    Inverted boxes are kept. An item without a usable ``bbox_2d`` (or an answer that is not a list
    of objects) raises in their code, which then keeps no box at all; a missing ``point_2d`` raises
    only after the boxes are assigned, so the boxes are kept (and the mask is empty).
    """
    data = _json(extract_tag(text, "answer")) if isinstance(text, str) else None
    if not isinstance(data, list):
        return []
    boxes = []
    for item in data:
        box = _first_four(item.get("bbox_2d")) if isinstance(item, dict) else None
        if box is None:
            return []
        boxes.append(box)
    return boxes


def _half_up(value: float, factor: float) -> int:
    """``int(v * factor + 0.5)``: RegionReasoner's and VisionReasoner's scaling (truncates towards 0)."""
    return int(value * factor + 0.5)


def _all_tags(text: str, objects: Objects) -> bool:
    return bool(objects) and all(extract_tag(text, tag) is not None for tag in ("scene", "focus", "think", "answer"))


# ---- Seg-Zero: <think>..</think><answer>{"bbox": [...], "points_1": [...], "points_2": [...]}</answer> ----


def first_braced(text: str) -> str | None:
    """The first match of ``{[^}]+}`` in ``text`` (Seg-Zero's pattern), found in linear time."""
    start = text.find("{")
    while start >= 0:
        end = text.find("}", start + 1)
        if end < 0:
            return None
        if end > start + 1:
            return text[start : end + 1]
        start = text.find("{", start + 1)
    return None


def has_think(text: str) -> bool:
    """Whether ``<think>([^<]+)</think>`` (Seg-Zero's pattern) matches somewhere, in linear time."""
    start = text.find("<think>")
    while start >= 0:
        body = start + len("<think>")
        end = text.find("<", body)
        if end < 0:
            return False
        if end > body and text.startswith("</think>", end):
            return True
        start = text.find("<think>", end)
    return False


@dataclass(frozen=True)
class _SegZeroAnswer:
    box: list[float]
    points: tuple[list[float], list[float]]


def _segzero(text: str) -> _SegZeroAnswer | None:
    """What Seg-Zero's reader gets, or None where it raises (its evaluation then scores nothing).

    It reads the first ``{...}`` of the whole completion as JSON, the first key containing
    ``bbox`` (four values), the first two keys containing ``points`` and a ``<think>`` part
    without ``<`` inside; any of them missing raises there.
    """
    if not isinstance(text, str):
        return None
    data = _json(first_braced(text))
    if not isinstance(data, dict):
        return None
    bbox_key = next((key for key in data if "bbox" in key.lower()), None)
    points_keys = [key for key in data if "points" in key.lower()][:2]
    if bbox_key is None or not isinstance(data[bbox_key], list) or len(data[bbox_key]) != 4 or len(points_keys) != 2:
        return None
    box = _first_four(data[bbox_key])
    points = [
        valid_point(data[key][:2]) if isinstance(data[key], list) and len(data[key]) >= 2 else None
        for key in points_keys
    ]
    if box is None or None in points or not has_think(text):
        return None
    return _SegZeroAnswer(box, (list(points[0]), list(points[1])))  # type: ignore[arg-type]


def _segzero_objects(text: str) -> Objects:
    """The one object, prompted by its first point (Seg-Zero prompts SAM2 with both: docs/fidelity.md)."""
    answer = _segzero(text)
    if answer is None or valid_box(answer.box) is None:
        return []
    return [{"bbox_2d": answer.box, "point_2d": answer.points[0]}]


def _segzero_raw_boxes(text: str) -> list[list[float]]:
    answer = _segzero(text)
    return [] if answer is None else [answer.box]


def _truncate_then_round(value: float, factor: float) -> int:
    """``round(int(v) * factor)``: Seg-Zero truncates the model's coordinate, then rounds half to even."""
    return round(int(value) * factor)


# ---- Qwen2.5-VL / Qwen2-VL: a ```json fenced list of {"bbox_2d" | "bbox": [...], ...} ------------------


def qwen_json(text: str) -> Any:
    """What the authors' ``extract_json_from_response`` returns (None where it fails).

    The first ```` ```json ```` block, else the text from the first ``[`` to the first ``]`` after
    it as a list (a list of objects with nested boxes therefore fails without the fence), else the
    first ``{...}``; a block that is not JSON gives None without trying the others.
    """
    if not isinstance(text, str):
        return None
    fence = text.find("```json")
    if fence >= 0:
        end = text.find("```", fence + 7)
        if end >= 0:
            return _json(text[fence + 7 : end].strip())
    start = text.find("[")
    end = text.find("]", start + 1) if start >= 0 else -1
    if end >= 0:
        return _json(f"[{text[start + 1 : end]}]")
    start = text.find("{")
    end = text.find("}", start + 1) if start >= 0 else -1
    return _json(f"{{{text[start + 1 : end]}}}") if end >= 0 else None


def _qwen_items(text: str) -> list[dict[str, Any]]:
    data = qwen_json(text)
    return [item for item in data[:MAX_OBJECTS] if isinstance(item, dict)] if isinstance(data, list) else []


def _qwen_objects(text: str) -> Objects:
    """Each item's ``bbox`` and ``bbox_2d`` (both, as their loop over the two keys).

    No point is kept: the authors' Qwen path prompts SAM2 with the box alone.
    """
    objects = []
    for item in _qwen_items(text):
        for key in ("bbox", "bbox_2d"):
            box = valid_box(item.get(key))
            if box is not None:
                objects.append({"bbox_2d": list(box), "point_2d": None})
    return objects


def _qwen_raw_boxes(text: str) -> list[list[float]]:
    """Each four-value ``bbox``/``bbox_2d``, as the authors' ``segment_objects`` reads them."""
    boxes = []
    for item in _qwen_items(text):
        for key in ("bbox", "bbox_2d"):
            value = item.get(key)
            if isinstance(value, list) and len(value) == 4 and all(_number(v) for v in value):
                boxes.append([float(v) for v in value])
    return boxes


def _truncate(value: float, factor: float) -> int:
    """``int(v * factor)``: the authors' Qwen scaling (truncates towards 0)."""
    return int(value * factor)


def _has_objects(text: str, objects: Objects) -> bool:
    return bool(objects)


ANSWER_FORMATS: dict[str, AnswerFormat] = {
    fmt.name: fmt
    for fmt in (
        AnswerFormat("tagged_json", "frame", parse_answer, _tagged_raw_boxes, _half_up, _all_tags),
        AnswerFormat("segzero", "frame", _segzero_objects, _segzero_raw_boxes, _truncate_then_round, _has_objects),
        AnswerFormat("qwen2_5_vl", "pixels", _qwen_objects, _qwen_raw_boxes, _truncate, _has_objects),
        AnswerFormat("qwen2_vl", "thousandths", _qwen_objects, _qwen_raw_boxes, _truncate, _has_objects),
    )
}
"""Answer formats by the name ``prompt.models.<id>.answer_format`` uses."""

DEFAULT_FORMAT = "tagged_json"


def answer_format(name: str) -> AnswerFormat:
    """The registered format ``name``; a clear error naming the known ones."""
    try:
        return ANSWER_FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown answer format {name!r}; known: {sorted(ANSWER_FORMATS)}") from None
