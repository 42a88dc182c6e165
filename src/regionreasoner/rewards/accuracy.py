"""Accuracy term of R_base (docs/method.md section 5; VisionReasoner's matching reward).

Predicted and ground-truth objects are matched one to one by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) on the cost
``3 - ([IoU > t_iou] + [mean |box L1| < t_l1] + [point distance < t_pt and point inside the
predicted box])``; the reward is ``(3 * matches - matched cost) / max(K, N)`` for K predicted and N
ground-truth objects, so it lies in [0, 3]. Thresholds are in frame pixels: the paper's 840 px frame
uses 0.5 / 10 px / 30 px (the defaults); a smaller frame (the tiny model's 112 px) should scale
them. IoU is the evaluation's, ``dialogs.geometry.box_iou`` (continuous, no +1 pixel; the released
code's differs, see released_code.py). K counts every item of the answer list, so invalid or surplus objects dilute
the reward instead of being ignored.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from regionreasoner.dialogs.geometry import box_iou
from regionreasoner.rewards.parsing import (
    Answer,
    answer_of,
    column,
    completion_text,
    valid_box,
    valid_point,
)

Box = tuple[float, float, float, float]
Point = tuple[float, float]
GroundTruth = list[tuple[Box, Point | None]]

IOU_THRESHOLD = 0.5
L1_THRESHOLD = 10.0
POINT_THRESHOLD = 30.0


def ground_truth(solution: Any, row: int = 0) -> GroundTruth:
    """The ``solution`` column of one row (a list of objects or its JSON text) as (box, point) pairs.

    Raises ValueError naming the row when the data is malformed: a data bug must not train silently.
    """
    if isinstance(solution, str):
        try:
            solution = json.loads(solution)
        except json.JSONDecodeError:
            raise ValueError(f"solution of row {row} is not JSON: {solution[:80]!r}") from None
    if not isinstance(solution, (list, tuple)):
        raise ValueError(f"solution of row {row} must be a list of objects, got {type(solution).__name__}")
    objects = []
    for index, item in enumerate(solution):
        box = valid_box(_as_list(item.get("bbox_2d"))) if isinstance(item, dict) else None
        if box is None:
            raise ValueError(f"solution of row {row}, object {index}: no valid bbox_2d in {item!r}")
        objects.append((box, valid_point(_as_list(item.get("point_2d")))))
    return objects


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _match_score(
    box: Box,
    point: Point | None,
    target: Box,
    target_point: Point | None,
    iou_threshold: float,
    l1_threshold: float,
    point_threshold: float,
) -> int:
    """3 - cost for one predicted/ground-truth pair: the number of satisfied criteria."""
    score = int(box_iou(box, target) > iou_threshold)
    score += int(sum(abs(p - t) for p, t in zip(box, target)) / 4.0 < l1_threshold)
    if point is not None and target_point is not None:
        inside = box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]
        distance = math.hypot(point[0] - target_point[0], point[1] - target_point[1])
        score += int(inside and distance < point_threshold)
    return score


def accuracy_score(
    answer: Answer,
    truth: GroundTruth,
    *,
    iou_threshold: float = IOU_THRESHOLD,
    l1_threshold: float = L1_THRESHOLD,
    point_threshold: float = POINT_THRESHOLD,
) -> float:
    """Matching reward of one parsed answer against its ground truth, in [0, 3]."""
    predicted = [obj for obj in answer.objects if obj.box is not None]
    if not predicted or not truth:
        return 0.0
    scores = [
        [
            _match_score(obj.box, obj.point, box, point, iou_threshold, l1_threshold, point_threshold)
            for box, point in truth
        ]
        for obj in predicted
    ]
    if len(scores) == 1 or len(truth) == 1:  # one row or column: the best pair is the assignment
        matched = max(max(row) for row in scores)
    else:
        matrix = np.asarray(scores, dtype=float)
        rows, cols = linear_sum_assignment(matrix, maximize=True)
        matched = float(matrix[rows, cols].sum())
    return matched / max(answer.item_count, len(truth))


def accuracy_reward(
    completions: list[Any],
    solution: list[Any] | None = None,
    *,
    iou_threshold: float = IOU_THRESHOLD,
    l1_threshold: float = L1_THRESHOLD,
    point_threshold: float = POINT_THRESHOLD,
    **kwargs: Any,
) -> list[float]:
    """TRL reward: Hungarian-matched localisation accuracy per completion, in [0, 3]."""
    if solution is None:
        raise ValueError("accuracy_reward needs the dataset column 'solution'")
    solutions = column({"solution": solution}, "solution", len(completions))
    return [
        accuracy_score(
            answer_of(completion_text(c)),
            ground_truth(s, row),
            iou_threshold=iou_threshold,
            l1_threshold=l1_threshold,
            point_threshold=point_threshold,
        )
        for row, (c, s) in enumerate(zip(completions, solutions))
    ]
