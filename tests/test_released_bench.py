"""The authors' released benchmark files convert to bench records evaluated as their code does.

The fixture is written in the released schema (the one test/evaluation/evaluation_multi_segmentation.py
of lmsdss/RegionReasoner reads): its keys, its ``<box>{context_bbox}</box>`` placeholder, a cited
turn without the placeholder, a turn citing itself, a placeholder in an uncited turn, and keys the
converter ignores. The dialogues are our own.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from regionreasoner.dialogs.released import convert_released
from regionreasoner.evaluate.dialogue import citation_counts, run_bench
from tests.conftest import ScriptedGenerator

WIDTH, HEIGHT = 200, 120


def _box_mask(box):
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = 1
    return mask


def _rle(box):
    rle = mask_utils.encode(np.asfortranarray(_box_mask(box)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def _turn(question, box, cited=None, **extra):
    turn = {"question": question, "bboxes": [box], "ann_ids": [len(question)], "masks": [_rle(box)], **extra}
    if cited is not None:
        turn["context_from_turn"] = cited
    return turn


def _released(tmp_path, images=(101, 102)):
    for image_id in images:
        (tmp_path / "imgs").mkdir(exist_ok=True)
        Image.new("RGB", (WIDTH, HEIGHT)).save(tmp_path / "imgs" / f"{image_id}.jpg")
    records = [
        {
            "image_id": 101, "image_path": "imgs/101.jpg", "split": "testA",
            "conversational_turns": [
                _turn("Find the red umbrella.", [10, 10, 60, 100]),
                _turn("Find the bench to the right of <box>{context_bbox}</box>.", [70, 20, 150, 110], cited=0),
                _turn("Find the dog next to the bench.", [150, 60, 190, 110], cited=1),  # cited, no placeholder
                _turn("The lamp above <box>{context_bbox}</box>?", [160, 0, 180, 40], cited=3),  # cites itself
            ],
        },
        {
            "image_id": 102, "image_path": "imgs/102.jpg",
            "conversational_turns": [
                {"question": "A cat", "bboxes": [[0, 0, 50, 50]], "masks": [_box_mask([0, 0, 50, 50]).tolist()]},
                _turn("The cat inside <box>{context_bbox}</box>", [10, 10, 40, 40], cited=0,
                      context_from_turn_2=0),  # an extra citation key: ignored, as the authors' code does
                _turn("the thing near <box>{context_bbox}</box>", [60, 0, 90, 30]),  # placeholder, no citation
            ],
        },
    ]
    raw = tmp_path / "refcocog_multi_turn.json"
    raw.write_text(json.dumps(records))
    return raw


def _answer(box):
    x1, y1, x2, y2 = box
    return (f'<scene>s</scene><focus>f</focus><think>t</think>'
            f'<answer>[{{"bbox_2d":[{x1},{y1},{x2},{y2}],"point_2d":[{x1},{y1}]}}]</answer>')


def test_released_file_keeps_rounds_and_citations_and_fills_the_placeholder_with_the_predicted_box(tmp_path):
    out, sheet = tmp_path / "bench.json", tmp_path / "sheet.md"
    convert_released(_released(tmp_path), tmp_path, out, sheet, reported={"images": 1580, "turns": 4405})
    bench = json.loads(out.read_text())
    stats = json.loads(sheet.with_suffix(".json").read_text())
    assert stats["turns_per_round"][:4] == [2, 2, 2, 1] and stats["turns"] == 7
    assert stats["settings"]["citations"] == {
        "cited_with_placeholder": 3, "cited_without_placeholder": 1,
        "placeholder_without_citation": 1, "cites_itself_or_a_later_turn": 1,
    }
    assert [t["context_from_turn"] for t in bench[0]["conversational_turns"]] == [None, 0, 1, 3]

    # turn 0 of image 101 is answered [10,10,50,50] in the 100x100 frame = [20,12,100,60] in pixels
    generator = ScriptedGenerator({"Find the red umbrella.": _answer([10, 10, 50, 50])})
    predictions = run_bench(bench, generator, segmenter=None)
    asked = {(p["image_id"], p["turn"]): p["question"] for p in predictions}
    assert asked == {
        (101, 0): "Find the red umbrella.",
        (101, 1): "Find the bench to the right of [20, 12, 100, 60].",  # the model's own box, their format
        (101, 2): "Find the dog next to the bench.",  # cited turn without placeholder: as written
        (101, 3): "The lamp above [160, 0, 180, 40]?",  # cites itself: no prediction yet, ground truth
        (102, 0): "A cat",
        (102, 1): "The cat inside [0, 0, 50, 50]",  # turn 0 predicted nothing: ground truth
        (102, 2): "the thing near <box>{context_bbox}</box>",  # uncited: asked as written
    }
    assert citation_counts(predictions) == {"cited_turns_filled": 3, "cited_ground_truth_fallbacks": 2}


def test_dense_target_mask_converts_to_rle(tmp_path):
    out = tmp_path / "bench.json"
    convert_released(_released(tmp_path), tmp_path, out)
    dense = json.loads(out.read_text())[1]["conversational_turns"][0]["masks"][0]
    assert mask_utils.decode({"size": dense["size"], "counts": dense["counts"].encode()}).sum() == 50 * 50


def test_missing_image_is_one_error_naming_the_dialogue_and_the_path(tmp_path):
    raw = _released(tmp_path, images=(101,))
    with pytest.raises(FileNotFoundError, match=r"dialogue 1 \(image_id 102\): image not found at .*imgs/102\.jpg"):
        convert_released(raw, tmp_path, tmp_path / "bench.json")


def test_citation_outside_the_dialogue_is_an_error_naming_the_turn(tmp_path):
    raw = _released(tmp_path)
    records = json.loads(raw.read_text())
    records[0]["conversational_turns"][1]["context_from_turn"] = 9
    raw.write_text(json.dumps(records))
    with pytest.raises(ValueError, match=r"dialogue 0 \(image_id 101\) turn 1: context_from_turn 9 is not a turn"):
        convert_released(raw, tmp_path, tmp_path / "bench.json")
