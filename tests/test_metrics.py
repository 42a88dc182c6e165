"""The evaluation protocol of docs/method.md section 7 on hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from regionreasoner.evaluate.metrics import box_iou, decode_mask, mask_iou, score_predictions
from regionreasoner.evaluate.segment import encode_mask

SIZE = 10


def region(y1: int, y2: int, x1: int, x2: int) -> dict[str, Any]:
    """RLE of the pixel rectangle [y1:y2, x1:x2] of a SIZE x SIZE image."""
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[y1:y2, x1:x2] = True
    return encode_mask(mask)


def turn(box: list[float], mask: dict[str, Any]) -> dict[str, Any]:
    return {"question": "q", "bboxes": [box], "masks": [mask], "ann_ids": [0]}


# Dialogue 1: a hit, a box at IoU exactly 0.5 (not > 0.5) with half the mask, a turn with no line.
# Dialogue 2: box IoU 0.75 with a null mask; two boxes (one exact) on an empty target mask.
BENCH = [
    {
        "image_id": 1,
        "image_path": "a.jpg",
        "width": SIZE,
        "height": SIZE,
        "conversational_turns": [
            turn([0, 0, 4, 4], region(0, 4, 0, 4)),
            turn([5, 5, 9, 9], region(5, 9, 5, 9)),
            turn([8, 0, 10, 2], region(0, 2, 8, 10)),
        ],
    },
    {
        "image_id": 2,
        "image_path": "b.jpg",
        "width": SIZE,
        "height": SIZE,
        "conversational_turns": [
            turn([2, 2, 6, 6], region(2, 6, 2, 6)),
            turn([0, 0, 2, 2], region(0, 0, 0, 0)),
        ],
    },
]
PREDICTIONS = [
    {"image_id": 1, "turn": 0, "boxes": [[0, 0, 4, 4]], "points": [[2, 2]], "mask": region(0, 4, 0, 4)},
    {"image_id": 1, "turn": 1, "boxes": [[5, 5, 9, 7]], "points": [[7, 6]], "mask": region(5, 7, 5, 9)},
    {"image_id": 2, "turn": 0, "boxes": [[3, 2, 6, 6]], "points": [[4, 4]], "mask": None},
    {"image_id": 2, "turn": 1, "boxes": [[5, 5, 6, 6], [0, 0, 2, 2]], "points": [[5, 5], [1, 1]], "mask": None},
]


def write(tmp_path: Path, predictions: list[dict[str, Any]], bench: list[dict[str, Any]] = BENCH) -> tuple[Path, Path]:
    bench_file, predictions_file = tmp_path / "bench.json", tmp_path / "predictions.jsonl"
    bench_file.write_text(json.dumps(bench))
    predictions_file.write_text("".join(json.dumps(p) + "\n" for p in predictions))
    return predictions_file, bench_file


def test_box_iou_uses_continuous_coordinates():
    assert box_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert box_iou([0, 0, 1, 1], [1, 0, 2, 1]) == 0.0  # touching boxes do not overlap (no +1 pixel)
    assert box_iou([0, 0, 0, 5], [0, 0, 0, 5]) == 0.0  # degenerate boxes count 0


def test_pooled_metrics_count_every_turn_and_a_missing_line_as_a_miss(tmp_path):
    result = score_predictions(*write(tmp_path, PREDICTIONS))
    assert result["turns"] == 5 and result["dialogues"] == 2 and result["predicted_turns"] == 4
    assert result["ap50"] == pytest.approx(60.0)  # hits: d1t0 (1.0), d2t0 (0.75), d2t1 (1.0)
    assert result["giou"] == pytest.approx(100 * (1 + 0.5 + 0 + 0 + 0) / 5)
    assert result["ciou"] == pytest.approx(100 * (16 + 8) / (16 + 16 + 4 + 16 + 0))
    assert result["pass"] == pytest.approx({"0.3": 80.0, "0.5": 60.0, "0.7": 60.0, "0.9": 40.0})


def test_per_round_metrics_assign_turns_by_their_order_in_the_dialogue(tmp_path):
    per_round = score_predictions(*write(tmp_path, PREDICTIONS))["per_round"]
    assert per_round == {
        "1": pytest.approx({"turns": 2, "ap50": 100.0, "giou": 50.0, "ciou": 50.0}),
        "2": pytest.approx({"turns": 2, "ap50": 50.0, "giou": 25.0, "ciou": 50.0}),
        "3": pytest.approx({"turns": 1, "ap50": 0.0, "giou": 0.0, "ciou": 0.0}),
    }


def test_empty_prediction_file_scores_zero_and_is_written(tmp_path):
    out = tmp_path / "metrics" / "m.json"
    result = score_predictions(*write(tmp_path, []), out=out)
    assert (result["turns"], result["ap50"], result["giou"], result["ciou"]) == (5, 0.0, 0.0, 0.0)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))


def test_empty_predicted_and_target_masks_count_zero(tmp_path):
    bench = [
        {
            "image_id": 3,
            "image_path": "c.jpg",
            "width": SIZE,
            "height": SIZE,
            "conversational_turns": [turn([0, 0, 2, 2], region(0, 0, 0, 0))],
        }
    ]
    lines = [{"image_id": 3, "turn": 0, "boxes": [], "points": [], "mask": region(0, 0, 0, 0)}]
    result = score_predictions(*write(tmp_path, lines, bench))
    assert (result["giou"], result["ciou"], result["ap50"]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"image_id": 9, "turn": 0}, "image_id 9 is not in the bench"),
        ({"image_id": 1, "turn": 3}, "turn 3 is not a turn of image_id 1"),
        ({"image_id": 1, "turn": 0}, "predicted twice"),
    ],
)
def test_bad_prediction_lines_name_the_file_and_line(tmp_path, line, message):
    predictions, bench = write(tmp_path, PREDICTIONS[:1] + [line])
    with pytest.raises(ValueError, match=rf"predictions.jsonl: line 2: .*{message}"):
        score_predictions(predictions, bench)


def test_mask_iou_equals_pycocotools_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(50):
        height, width = rng.integers(5, 60, size=2)
        a = rng.random((height, width)) < rng.uniform(0.05, 0.9)
        b = rng.random((height, width)) < rng.uniform(0.05, 0.9)
        rle_a, rle_b = (mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in (a, b))
        expected = mask_utils.iou([rle_a], [rle_b], [0])[0, 0]
        assert mask_iou(a, b) == pytest.approx(expected, abs=1e-12)
        assert np.array_equal(decode_mask(encode_mask(a), int(height), int(width)), a)


def test_decode_mask_reads_uncompressed_rle_and_polygons():
    mask = np.zeros((4, 5), dtype=bool)
    mask[1:3, 1:4] = True
    uncompressed = {"size": [4, 5], "counts": [5, 2, 2, 2, 2, 2, 5]}
    assert np.array_equal(decode_mask(uncompressed, 4, 5), mask)
    assert decode_mask([[1, 1, 4, 1, 4, 3, 1, 3]], 4, 5).sum() > 0
    with pytest.raises(ValueError, match="does not match"):
        decode_mask(encode_mask(mask), 5, 5)


def test_per_dialogue_outcomes_list_hits_and_citations_in_turn_order(tmp_path):
    result = score_predictions(*write(tmp_path, PREDICTIONS))
    assert result["per_dialogue"] == [{"hit": "100", "cited": "000"}, {"hit": "11", "cited": "00"}]


def test_query_dependence_counts_images_whose_plain_answers_differ(tmp_path):
    same = [{"image_id": 1, "turn": t, "boxes": [[0, 0, 4, 4]], "points": [], "mask": None} for t in range(3)]
    same += [{"image_id": 2, "turn": t, "boxes": [[2, 2, 6, 6]], "points": [], "mask": None} for t in range(2)]
    assert score_predictions(*write(tmp_path, same))["query_dependence"] == {"images": 2, "share": 0.0}
    different = same[:4] + [{"image_id": 2, "turn": 1, "boxes": [[0, 0, 2, 2]], "points": [], "mask": None}]
    assert score_predictions(*write(tmp_path, different))["query_dependence"] == {"images": 2, "share": 50.0}
    # a turn that cites another turn's box is not asked plainly: image 2 keeps one plain turn and drops out
    cited = json.loads(json.dumps(BENCH))
    cited[1]["conversational_turns"][1]["context_from_turn"] = 0
    assert score_predictions(*write(tmp_path, different, cited))["query_dependence"] == {"images": 1, "share": 0.0}
