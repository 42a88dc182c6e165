"""Our gIoU, cIoU and box AP against the definitions of the authors' calculate_iou*.py.

lmsdss/RegionReasoner @ f34dbfcbc9871121bcb5fe48c26da61b828aa4e6: evaluation_multi_segmentation.py
writes per turn the intersection and union of the predicted mask with the FIRST target mask and
``bbox_iou`` = 1 when some predicted box has IoU > 0.5 with the FIRST target box (binarized);
calculate_iou_with_bbox.py then reports gIoU = mean of per-turn I/U (0 when U = 0), cIoU = sum I /
sum U and "bbox_AP" = mean of ``bbox_iou``. The expected numbers below are worked out by hand from
those definitions.
"""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from regionreasoner.evaluate.metrics import score_prediction_lines

SIZE = 10


def _mask(x1, y1, x2, y2):
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[y1:y2, x1:x2] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def _turn(*boxes):
    return {"bboxes": [list(b) for b in boxes], "masks": [_mask(*b) for b in boxes]}


def _score(turns, predictions):
    bench = [{"image_id": 1, "width": SIZE, "height": SIZE, "conversational_turns": turns}]
    lines = [{"dialogue": 0, "turn": t, "boxes": [list(b)], "mask": _mask(*b)} for t, b in predictions.items()]
    return score_prediction_lines(lines, "predictions", bench, "bench")


def test_single_target_turns_score_as_the_authors_calculate_iou_with_bbox():
    turns = [_turn((0, 0, 5, 5)), _turn((5, 5, 10, 10)), _turn((0, 8, 2, 10))]
    # turn 0: predicted 3x5 inside the 5x5 target: I 15, U 25, box IoU 0.6 > 0.5 -> hit
    # turn 1: predicted 10x5 holding the 5x5 target: I 25, U 50, box IoU 0.5, not > 0.5 -> miss
    # turn 2: nothing predicted: I 0, U 4 (the target), miss
    metrics = _score(turns, {0: (0, 0, 3, 5), 1: (0, 5, 10, 10)})
    assert metrics["giou"] == pytest.approx(100 * (15 / 25 + 25 / 50 + 0) / 3)  # 36.67
    assert metrics["ciou"] == pytest.approx(100 * (15 + 25 + 0) / (25 + 50 + 4))  # 50.63
    assert metrics["ap50"] == pytest.approx(100 * 1 / 3)  # 33.33
    assert [metrics["per_round"][r]["turns"] for r in ("1", "2", "3")] == [1, 1, 1]


def test_turn_with_two_targets_is_where_ours_deliberately_differ():
    # the prediction finds the SECOND target exactly. The authors compare with the first target
    # only: mask I 0, U 25 + 25 = 50, gIoU 0, box miss. Ours pools all targets: the target mask is
    # the union of both (50 px), I 25, U 50, gIoU 0.5, and the box matches the second target: hit.
    ours = _score([_turn((0, 0, 5, 5), (5, 5, 10, 10))], {0: (5, 5, 10, 10)})
    assert {k: ours[k] for k in ("giou", "ciou", "ap50")} == pytest.approx({"giou": 50.0, "ciou": 50.0, "ap50": 100.0})
    # keeping the first target only (what their evaluation reads) gives their numbers
    theirs = _score([_turn((0, 0, 5, 5))], {0: (5, 5, 10, 10)})
    assert {k: theirs[k] for k in ("giou", "ciou", "ap50")} == {"giou": 0.0, "ciou": 0.0, "ap50": 0.0}
