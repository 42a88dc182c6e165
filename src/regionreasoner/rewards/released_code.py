"""The authors' released reward, reimplemented from its behaviour (docs/method.md section 5, last bullet).

Behaviour of ``train/verl/utils/reward_score/region_reasoner.py`` in lmsdss/RegionReasoner
(commit f34dbfc), where the total is ``format + accuracy + non_repeat + consistency``, unweighted
and unclipped, and ``format`` itself is tags + answer validity + citation. Each summand is exposed
as its own TRL reward function with weight 1, summed in the released order, so the total is
bit-identical to the released one. Every difference from the paper's definitions is listed in
docs/rewards.md; the notable ones:

* tags: scene 0/0.2/0.3/0.5 (0.5 needs a scene word), focus with a reference 0/0.2/0.8 (0 when over
  60 % of the question's tokens are copied), focus without a reference 0.5 only when absent,
  think 0/0.2/0.5, answer 0/0.1/0.5 (all by content length);
* answer validity: per item [bbox_2d is a 4-list] + [point_2d is a 2-list], values unchecked;
* citation: 0 without a ``<think>`` tag or without a ``problem``; integers only (``\\d+``);
* accuracy: IoU with the +1 pixel convention, computed with NumPy on the raw JSON values, 0 on
  any malformed answer, at most 120 objects;
* consistency: the first 10 words longer than 2 characters outside a stop list, matched as
  substrings (no lemmas, no noun filter), focus coverage 1 when the focus is empty, and a logic
  bonus of 0.5/0.3/0.2/0.2 over substring word classes (up to 1.2), so it lies in [0, 2.08].

Ranges: tags [0, 2.3], answer validity [0, 2], citation [0, 2], accuracy [0, 3], non-repeat
{0, 1}, consistency [0, 2.08]; total [0, 12.38].
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from regionreasoner.rewards.format import non_repeat_score
from regionreasoner.rewards.parsing import column, completion_text, memoize_text, output_blocks

MAX_OBJECTS = 120
SCENE_WORDS = ("scene", "image", "picture", "photo", "shows", "contains", "visible", "appears", "located")
BOX_WORDS = ("bbox", "bounding box", "bbox=", "coordinates", "bounding box=")
STOP_WORDS = frozenset(
    "the a an and or but in on at to for of with by is are was were be been being have has had "
    "do does did will would could should".split()
)
LOGIC_CLASSES = (
    (0.5, ("above", "below", "left", "right", "inside", "overlapping", "near", "touching", "next to")),
    (0.3, ("compare", "similar", "different", "match", "closest", "best", "choose", "select", "find")),
    (0.2, ("locate", "identify", "position", "area", "region", "corner", "center", "coordinates")),
    (0.2, ("reference", "bbox", "guidance", "based on", "according to")),
)
# Same languages as the released patterns; ``\s*(?:=\s*)?`` replaces ``\s*=?\s*`` (quadratic).
_QUESTION_BOX = re.compile(r"bbox\s*=\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")
_THINK_BOX = re.compile(r"bbox\s*(?:=\s*)?\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")
_WORD = re.compile(r"\w+")


class _Stop(Exception):
    """Where the released code's ``try`` block would be left by an exception."""


# ---------------------------------------------------------------- format: tags, validity, citation
def _scene_tag(text: str) -> float:
    scene = output_blocks(text).scene
    if scene is None:
        return 0.0
    if len(scene) < 10:
        return 0.2
    lowered = scene.lower()
    return 0.5 if any(word in lowered for word in SCENE_WORDS) else 0.3


def _focus_tag(text: str, problem: str | None) -> float:
    focus = output_blocks(text).focus
    if not (problem and _QUESTION_BOX.search(problem.lower())):
        return 0.5 if focus is None else 0.0
    if not focus:
        return 0.0
    score = 0.2 if len(focus.split()) < 5 else 0.8
    question_tokens = set(problem.lower().split())
    copied = len(question_tokens & set(focus.lower().split())) / (len(question_tokens) + 1e-6)
    return 0.0 if copied > 0.6 else score


def _length_tag(content: str | None, short: int, low: float) -> float:
    if content is None:
        return 0.0
    return low if len(content) < short else 0.5


def tags_score(text: str, problem: str | None) -> float:
    """Released scene + focus + think + answer tag scores, in [0, 2.3]."""
    blocks = output_blocks(text)
    return (
        _scene_tag(text)
        + _focus_tag(text, problem)
        + _length_tag(blocks.think, 10, 0.2)
        + _length_tag(blocks.answer, 3, 0.1)
    )


_INVALID = object()


@memoize_text
def _load_json(payload: str) -> Any:
    try:
        return json.loads(payload)
    except Exception:  # JSONDecodeError, RecursionError, the integer digit limit
        return _INVALID


def _answer_json(text: str) -> Any:
    """The parsed answer JSON (shared, read-only); _Stop where the released parse fails."""
    payload = output_blocks(text).answer
    data = _INVALID if payload is None else _load_json(payload)
    if data is _INVALID:
        raise _Stop
    return data


def answer_validity_score(text: str) -> float:
    """Released per-item [bbox_2d is a 4-list] + [point_2d is a 2-list] mean, in [0, 2].

    Iterating the parsed JSON mirrors the released loop: a dict or string yields its keys or
    characters (worth 0); a non-object item that would raise there ends the sum early.
    """
    total = 0.0
    try:
        data = _answer_json(text)
        if not isinstance(data, (list, dict, str)):
            return 0.0  # len() of a number, bool or null raises
        count = len(data)
        for item in data:
            if isinstance(item, dict):
                bbox, point = item.get("bbox_2d"), item.get("point_2d")
                score = float(isinstance(bbox, list) and len(bbox) == 4)
                score += float(isinstance(point, list) and len(point) == 2)
                total += score / count
            elif not isinstance(item, (list, str)) or "bbox_2d" in item or "point_2d" in item:
                break  # membership test on a scalar, or indexing a list/str by a key, raises
    except _Stop:
        pass
    return total


def citation_score(text: str, problem: str | None) -> float:
    """Released "thinking bbox" reward (its R_ref), in [0, 2]."""
    think = output_blocks(text).think
    if think is None or problem is None:
        return 0.0
    references = _QUESTION_BOX.findall(problem.lower())
    if not references:
        return 1.0
    mentions = think.lower()
    score = 1.0 if any(word in mentions for word in BOX_WORDS) else 0.0
    cited = _THINK_BOX.findall(mentions)
    if not cited:
        return score
    try:
        reference_set = {tuple(int(v) for v in box) for box in references}
        cited_set = {tuple(int(v) for v in box) for box in cited}
    except ValueError:  # a coordinate beyond Python's integer-string digit limit
        return score
    matched = cited_set & reference_set
    if matched:
        score += len(matched) / len(cited_set)
    if cited_set - reference_set:
        score *= 0.5
    return score


# ---------------------------------------------------------------- accuracy
def _iou_plus_one(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(M, N) IoU with the +1 pixel convention on raw arrays (may raise like NumPy does).

    Deliberately not ``dialogs.geometry.box_iou``: the released reward counts a box's pixels
    inclusively (width ``x2 - x1 + 1``) and lets NumPy's division rules decide degenerate cases;
    reproducing that reward means keeping its IoU, not the evaluation's.
    """
    px1, py1, px2, py2 = (pred[:, k : k + 1] for k in range(4))
    tx1, ty1, tx2, ty2 = (truth[:, k : k + 1].T for k in range(4))
    width = np.maximum(0, np.minimum(px2, tx2) - np.maximum(px1, tx1) + 1)
    height = np.maximum(0, np.minimum(py2, ty2) - np.maximum(py1, ty1) + 1)
    inter = width * height
    union = (px2 - px1 + 1) * (py2 - py1 + 1) + ((tx2 - tx1 + 1) * (ty2 - ty1 + 1)) - inter
    return inter / union


def _small_ints(rows: list[Any], width: int) -> bool:
    """Every row is a list of ``width`` plain ints below 2**20 in magnitude.

    For such values NumPy's int64/float64 arithmetic is exact and equals Python's, so the
    pure-Python path gives bit-identical results without NumPy's per-call overhead.
    """
    return all(
        type(row) is list and len(row) == width and all(type(v) is int and -_SMALL < v < _SMALL for v in row)
        for row in rows
    )


_SMALL = 2**20


def _hits_small(box: list[int], point: list[int], target: list[int], target_point: list[int]) -> int:
    """Released criteria of one pair on small ints: [IoU+1 > .5] + [L1 < 10] + [point < 30 and inside]."""
    inter = max(0, min(box[2], target[2]) - max(box[0], target[0]) + 1) * max(
        0, min(box[3], target[3]) - max(box[1], target[1]) + 1
    )
    union = (
        (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
        + (target[2] - target[0] + 1) * (target[3] - target[1] + 1)
        - inter
    )
    iou_hit = inter / union > 0.5 if union else inter > 0  # NumPy: x/0 is inf for x > 0, nan for 0
    l1_hit = sum(abs(p - t) for p, t in zip(box, target)) / 4 < 10
    inside = box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]
    dx, dy = point[0] - target_point[0], point[1] - target_point[1]
    return int(iou_hit) + int(l1_hit) + int(inside and math.sqrt(dx * dx + dy * dy) < 30)


def _accuracy_small(boxes, points, truth_boxes, truth_points) -> float:
    hits = [[_hits_small(b, p, t, tp) for t, tp in zip(truth_boxes, truth_points)] for b, p in zip(boxes, points)]
    if len(hits) == 1 or len(truth_boxes) == 1:
        matched = max(max(row) for row in hits)
    else:
        matrix = np.asarray(hits, dtype=float)
        rows, cols = linear_sum_assignment(matrix, maximize=True)
        matched = int(matrix[rows, cols].sum())
    return matched / max(len(boxes), len(truth_boxes))


def _accuracy_numpy(boxes, points, truth_boxes, truth_points) -> float:
    boxes, points = np.array(boxes), np.array(points)
    truth_boxes, truth_points = np.array(truth_boxes), np.array(truth_points)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or truth_boxes.ndim != 2:
        raise _Stop  # the released column split or the 2-D assignment fails
    if points.ndim != 2 or points.shape[1] != 2:
        raise _Stop  # the released distance broadcast or point indexing fails
    iou = _iou_plus_one(boxes, truth_boxes)
    l1 = np.abs(boxes[:, None, :] - truth_boxes[None, :, :]).mean(axis=2)
    distance = np.sqrt(((points[:, None, :] - truth_points[None, :, :]) ** 2).sum(axis=2))
    inside = (
        (points[:, 0] >= boxes[:, 0])
        & (points[:, 0] <= boxes[:, 2])
        & (points[:, 1] >= boxes[:, 1])
        & (points[:, 1] <= boxes[:, 3])
    )
    hits = (iou > 0.5).astype(float) + (l1 < 10).astype(float) + ((distance < 30) & inside[:, None]).astype(float)
    rows, cols = linear_sum_assignment(3.0 - hits)
    total = len(rows) * 3.0 - (3.0 - hits)[rows, cols].sum()
    return float(total / max(len(boxes), len(truth_boxes)))


def _accuracy(text: str, solution: Any) -> float:
    truth = json.loads(solution) if isinstance(solution, str) else solution
    truth_boxes = [obj["bbox_2d"] for obj in truth][:MAX_OBJECTS]
    truth_points = [obj["point_2d"] for obj in truth][:MAX_OBJECTS]
    data = _answer_json(text)  # a dict or string iterates keys/characters: indexing them raises
    boxes = [item["bbox_2d"] for item in data][:MAX_OBJECTS]
    points = [item["point_2d"] for item in data][:MAX_OBJECTS]
    if (
        boxes
        and truth_boxes
        and _small_ints(boxes, 4)
        and _small_ints(points, 2)
        and _small_ints(truth_boxes, 4)
        and _small_ints(truth_points, 2)
    ):
        return _accuracy_small(boxes, points, truth_boxes, truth_points)
    return _accuracy_numpy(boxes, points, truth_boxes, truth_points)


def accuracy_score(text: str, solution: Any) -> float:
    """Released matching accuracy (IoU +1 pixel, thresholds 0.5 / 10 / 30), in [0, 3]; 0 on any error."""
    try:
        with np.errstate(all="ignore"):
            return _accuracy(text, solution)
    except Exception:  # _Stop, KeyError, TypeError, ValueError: the released catch-all
        return 0.0


# ---------------------------------------------------------------- consistency
def _keywords(text: str) -> list[str]:
    """First 10 words (``\\w+`` of the lowercased text) longer than 2 characters, not stop words."""
    words = []
    for match in _WORD.finditer(text.lower()):
        word = match.group()
        if len(word) > 2 and word not in STOP_WORDS:
            words.append(word)
            if len(words) == 10:
                break
    return words


def _coverage(keywords: list[str], think: str) -> float:
    return min(sum(1 for word in keywords if word in think) / max(len(keywords), 1), 1.0)


def consistency_score(text: str, problem: str | None) -> float:
    """Released consistency (scene/focus keyword coverage + logic bonus), in [0, 2.08]."""
    if not problem:
        return 0.0
    blocks = output_blocks(text)
    if blocks.scene is None or blocks.answer is None or blocks.think is None:
        return 0.0
    think = blocks.think.lower()
    focus = blocks.focus or ""
    focus_coverage = _coverage(_keywords(focus), think) if focus.strip() else 1.0
    logic = 0.0
    for bonus, words in LOGIC_CLASSES:
        if any(word in think for word in words):
            logic += bonus
    return _coverage(_keywords(blocks.scene), think) * 1.0 + focus_coverage * 0.6 + logic * 0.4


# ---------------------------------------------------------------- TRL reward functions
def _per_problem(
    score: Callable[[str, str | None], float], completions: list[Any], kwargs: dict[str, Any]
) -> list[float]:
    """``score(text, problem)`` of each completion; a missing or non-text problem counts as None."""
    problems = [p if isinstance(p, str) else None for p in column(kwargs, "problem", len(completions))]
    return [score(completion_text(c), p) for c, p in zip(completions, problems)]


def released_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward: released tag scores (scene + focus + think + answer), in [0, 2.3]."""
    return _per_problem(tags_score, completions, kwargs)


def released_answer_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward: released answer validity, in [0, 2]."""
    return [answer_validity_score(completion_text(c)) for c in completions]


def released_citation_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward: released thinking-bbox citation reward, in [0, 2]."""
    return _per_problem(citation_score, completions, kwargs)


def released_accuracy_reward(completions: list[Any], solution: list[Any] | None = None, **kwargs: Any) -> list[float]:
    """TRL reward: released accuracy, in [0, 3]."""
    if solution is None:
        raise ValueError("released_accuracy_reward needs the dataset column 'solution'")
    solutions = column({"solution": solution}, "solution", len(completions))
    return [accuracy_score(completion_text(c), s) for c, s in zip(completions, solutions)]


def released_non_repeat_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward: non-repeat, 0 or 1 (the same definition as the paper's)."""
    return [non_repeat_score(completion_text(c)) for c in completions]


def released_consistency_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward: released consistency, in [0, 2.08]; 0 without a problem text."""
    return _per_problem(consistency_score, completions, kwargs)
