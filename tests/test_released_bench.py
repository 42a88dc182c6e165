"""The authors' released benchmark files convert to bench records the evaluator runs on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from regionreasoner.dialogs.released import convert_released


def _rle(box, height=120, width=200):
    mask = np.zeros((height, width), dtype=np.uint8, order="F")
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = 1
    rle = mask_utils.encode(mask)
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def _released(tmp_path, cited=0):
    records = [{
        "image_id": 9, "image_path": "images/COCO_train2014_000000000009.jpg",
        "conversational_turns": [
            {"question": "the man in red", "bboxes": [[10, 10, 60, 100]], "ann_ids": [5], "masks": [_rle([10, 10, 60, 100])]},
            {"question": "Who is next to bbox=[10,10,60,100]?", "bboxes": [[70, 20, 150, 110]], "ann_ids": [6],
             "context_from_turn": cited, "masks": [_rle([70, 20, 150, 110])]},
        ],
    }]
    raw = tmp_path / "refcocog_multi_turn.json"
    raw.write_text(json.dumps(records))
    return raw


def test_released_dialogue_becomes_a_bench_record_with_a_citation_template(tmp_path):
    out, sheet = tmp_path / "bench.json", tmp_path / "sheet.md"
    convert_released(_released(tmp_path), tmp_path, out, sheet, reported={"images": 1580, "turns": 4405, "rounds": [1580]})
    (dialogue,) = json.loads(out.read_text())
    assert (dialogue["width"], dialogue["height"]) == (200, 120)  # from the RLE size, no image needed
    assert dialogue["image_path"] == str(tmp_path / "images/COCO_train2014_000000000009.jpg")
    later = dialogue["conversational_turns"][1]
    assert later["question_template"] == "Who is next to {ref_box}?"
    assert later["relation"] == "next_to" and later["context_from_turn"] == 0
    x, y = later["points"][0]
    assert 70 <= x <= 150 and 20 <= y <= 110
    stats = json.loads(sheet.with_suffix(".json").read_text())
    assert stats["turns_per_round"][:2] == [1, 1] and stats["reported"]["turns"] == 4405


def test_citation_of_a_later_turn_is_an_error_naming_the_record(tmp_path):
    with pytest.raises(ValueError, match=r"dialogue 0 turn 1: context_from_turn 1 does not point to an earlier turn"):
        convert_released(_released(tmp_path, cited=1), tmp_path, tmp_path / "bench.json")
