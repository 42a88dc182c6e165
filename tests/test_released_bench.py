"""The authors' released benchmark files convert to bench records evaluated as their code does.

The fixture is written in the released schema (the one test/evaluation/evaluation_multi_segmentation.py
of lmsdss/RegionReasoner reads): its keys, its ``<box>{context_bbox}</box>`` placeholder, a cited
turn without the placeholder, a turn citing itself, a placeholder in an uncited turn, and keys the
converter ignores. The dialogues are our own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from regionreasoner.cli import main
from regionreasoner.dialogs.released import convert_released
from regionreasoner.evaluate.dialogue import citation_counts, run_bench
from regionreasoner.evaluate.metrics import write_and_score_run
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
            "image_id": 101,
            "image_path": "imgs/101.jpg",
            "split": "testA",
            "conversational_turns": [
                _turn("Find the red umbrella.", [10, 10, 60, 100]),
                _turn("Find the bench to the right of <box>{context_bbox}</box>.", [70, 20, 150, 110], cited=0),
                _turn("Find the dog next to the bench.", [150, 60, 190, 110], cited=1),  # cited, no placeholder
                _turn("The lamp above <box>{context_bbox}</box>?", [160, 0, 180, 40], cited=3),  # cites itself
            ],
        },
        {
            "image_id": 102,
            "image_path": "imgs/102.jpg",
            "conversational_turns": [
                {"question": "A cat", "bboxes": [[0, 0, 50, 50]], "masks": [_box_mask([0, 0, 50, 50]).tolist()]},
                _turn(
                    "The cat inside <box>{context_bbox}</box>", [10, 10, 40, 40], cited=0, context_from_turn_2=0
                ),  # an extra citation key: ignored, as the authors' code does
                _turn("the thing near <box>{context_bbox}</box>", [60, 0, 90, 30]),  # placeholder, no citation
            ],
        },
    ]
    raw = tmp_path / "refcocog_multi_turn.json"
    raw.write_text(json.dumps(records))
    return raw


def _answer(box):
    x1, y1, x2, y2 = box
    return (
        f"<scene>s</scene><focus>f</focus><think>t</think>"
        f'<answer>[{{"bbox_2d":[{x1},{y1},{x2},{y2}],"point_2d":[{x1},{y1}]}}]</answer>'
    )


def test_released_file_keeps_rounds_and_citations_and_fills_the_placeholder_with_the_predicted_box(tmp_path):
    out, sheet = tmp_path / "bench.json", tmp_path / "sheet.md"
    convert_released(_released(tmp_path), tmp_path, out, sheet, reported={"images": 1580, "turns": 4405})
    bench = json.loads(out.read_text())
    stats = json.loads(sheet.with_suffix(".json").read_text())
    assert stats["turns_per_round"][:4] == [2, 2, 2, 1] and stats["turns"] == 7
    assert stats["settings"]["citations"] == {
        "cited_with_placeholder": 3,
        "cited_without_placeholder": 1,
        "placeholder_without_citation": 1,
        "cites_itself_or_a_later_turn": 1,
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
    assert citation_counts(predictions) == {
        "cited_turns_filled": 3,
        "cited_ground_truth_fallbacks": 2,
        "cited_differs_from_valid_box_reading": 0,
    }


def _without_masks(tmp_path):
    raw = _released(tmp_path)
    records = json.loads(raw.read_text())
    for record in records:
        for turn in record["conversational_turns"]:
            turn.pop("masks", None)
    raw.write_text(json.dumps(records))
    return raw


@dataclass
class PerfectGenerator:
    """Answers every turn with its target box (100x100 frame): ``run_bench`` asks round by round."""

    bench: list
    frame: int = 100
    round: int = 0

    def answer(self, image_paths, questions, progress=None):
        turns = {d["image_path"]: d["conversational_turns"] for d in self.bench}
        answers = []
        for path in image_paths:
            dialogue = next(d for d in self.bench if d["image_path"] == path)
            x1, y1, x2, y2 = turns[path][self.round]["bboxes"][0]
            sx, sy = self.frame / dialogue["width"], self.frame / dialogue["height"]
            answers.append(_answer([x1 * sx, y1 * sy, x2 * sx, y2 * sy]))
        self.round += 1
        return answers


def test_a_released_file_without_masks_converts_and_scores_box_metrics_with_mask_metrics_unavailable(tmp_path):
    bench_path = tmp_path / "bench.json"
    convert_released(_without_masks(tmp_path), tmp_path, bench_path)
    bench = json.loads(bench_path.read_text())
    generator = PerfectGenerator(bench)
    predictions = run_bench(bench, generator, segmenter=None)
    metrics = write_and_score_run(predictions, bench_path, tmp_path, "refcocog.multi")
    assert metrics["ap50"] == 100.0 and metrics["pass"]["0.9"] == 100.0
    assert metrics["giou"] is None and metrics["ciou"] is None
    assert metrics["mask_metrics"].startswith("unavailable: 7 of 7 turns have no target mask")
    assert json.loads((tmp_path / "refcocog.multi.json").read_text())["giou"] is None
    assert all(r["giou"] is None and r["ap50"] == 100.0 for r in metrics["per_round"].values())


def test_score_command_scores_a_mask_free_file_and_prints_mask_metrics_as_unavailable(tmp_path, capsys):
    bench_path = tmp_path / "bench.json"
    convert_released(_without_masks(tmp_path), tmp_path, bench_path)
    bench = json.loads(bench_path.read_text())
    lines = [
        {"dialogue": d, "image_id": dialogue["image_id"], "turn": t, "boxes": [turn["bboxes"][0]]}
        for d, dialogue in enumerate(bench)
        for t, turn in enumerate(dialogue["conversational_turns"])
    ]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "m.json"
    args = ["--predictions", str(tmp_path / "p.jsonl"), "--bench", str(bench_path), "--out", str(out)]
    assert main(["score", *args]) == 0
    assert "AP@0.5 100.0, gIoU n/a" in capsys.readouterr().out
    assert json.loads(out.read_text())["ap50"] == 100.0


def test_an_inverted_earlier_answer_is_cited_as_the_authors_evaluator_cites_it(tmp_path):
    bench_path = tmp_path / "bench.json"
    convert_released(_released(tmp_path), tmp_path, bench_path)
    bench = json.loads(bench_path.read_text())
    # turn 0 of image 101 (200x120 image, 100x100 frame) answers an inverted box first, then a valid one
    inverted = (
        '<scene>s</scene><focus>f</focus><think>t</think><answer>[{"bbox_2d":[50,10,10,50],"point_2d":[20,20]},'
        '{"bbox_2d":[10,10,50,50],"point_2d":[20,20]}]</answer>'
    )
    generator = ScriptedGenerator({"Find the red umbrella.": inverted})
    predictions = run_bench(bench, generator, segmenter=None)
    asked = {(p["image_id"], p["turn"]): p["question"] for p in predictions}
    # their evaluator: int(v * W/840 + 0.5) of the first box as given -> [100, 12, 20, 60], written by str()
    assert asked[(101, 1)] == "Find the bench to the right of [100, 12, 20, 60]."
    assert predictions[0]["boxes"] == [[20.0, 12.0, 100.0, 60.0]]  # scored: the valid box only
    assert citation_counts(predictions)["cited_differs_from_valid_box_reading"] == 1


def test_a_cited_box_is_scaled_then_written_as_the_authors_do(tmp_path):
    bench_path = tmp_path / "bench.json"
    convert_released(_released(tmp_path), tmp_path, bench_path)
    bench = json.loads(bench_path.read_text())
    # 10.3 * 200/100 + 0.5 = 21.1 -> 21; rounding in the frame first (10) would write 20
    generator = ScriptedGenerator({"Find the red umbrella.": _answer([10.3, 10.3, 50.7, 50.2])})
    predictions = run_bench(bench, generator, segmenter=None)
    asked = {(p["image_id"], p["turn"]): p["question"] for p in predictions}
    assert asked[(101, 1)] == "Find the bench to the right of [21, 12, 101, 60]."


def test_an_answer_object_without_a_point_keeps_its_box_for_the_citation(tmp_path):
    bench_path = tmp_path / "bench.json"
    convert_released(_released(tmp_path), tmp_path, bench_path)
    bench = json.loads(bench_path.read_text())
    pointless = '<scene>s</scene><focus>f</focus><think>t</think><answer>[{"bbox_2d":[10,10,50,50]}]</answer>'
    predictions = run_bench(bench, ScriptedGenerator({"Find the red umbrella.": pointless}), segmenter=None)
    cited = next(p for p in predictions if (p["image_id"], p["turn"]) == (101, 1))
    assert cited["question"] == "Find the bench to the right of [20, 12, 100, 60]."
    assert cited["cited_box_source"] == "prediction"


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


def _hub_layout(tmp_path):
    """A small copy of the hub dataset lmsdss/regionreasoner_test_data: ``raw/<name>_multi_turn.json``
    (a JSON list, target masks as dense 0/1 arrays) beside ``raw/<name>_test_multi_bbox_images/``, the
    records' ``image_path`` relative to ``raw/``."""
    raw = tmp_path / "hub" / "raw"
    (raw / "refcocog_test_multi_bbox_images").mkdir(parents=True)
    Image.new("RGB", (WIDTH, HEIGHT)).save(raw / "refcocog_test_multi_bbox_images" / "656.jpg")
    dense = _box_mask([10, 10, 60, 100]).tolist()
    records = [
        {
            "image_id": 656,
            "image_path": "refcocog_test_multi_bbox_images/656.jpg",
            "conversational_turns": [
                {"question": "the red umbrella", "bboxes": [[10, 10, 60, 100]], "ann_ids": [7], "masks": [dense]},
                {
                    "question": "the bench to the right of <box>{context_bbox}</box>",
                    "bboxes": [[70.5, 20, 150, 110]],
                    "ann_ids": [8],
                    "masks": [_box_mask([70, 20, 150, 110]).tolist()],
                    "context_from_turn": 0,
                },
            ],
        }
    ]
    (raw / "refcocog_multi_turn.json").write_text(json.dumps(records))
    return tmp_path / "hub"


def test_hub_layout_converts_with_its_images_beside_the_file_and_prints_the_counts(tmp_path, capsys):
    root = _hub_layout(tmp_path)
    out, sheet = tmp_path / "refcocog.json", tmp_path / "refcocog.datasheet.md"
    assert (
        main(
            [
                "convert-released",
                "--name",
                "refcocog",
                "--raw",
                str(root / "raw" / "refcocog_multi_turn.json"),
                "--out",
                str(out),
                "--datasheet",
                str(sheet),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "1 dialogues, 2 turns (paper, Table 6: 1580 images, 4405 turns), 2 with a target mask" in printed
    bench = json.loads(out.read_text())
    assert bench[0]["image_path"].endswith("raw/refcocog_test_multi_bbox_images/656.jpg")
    rle = bench[0]["conversational_turns"][0]["masks"][0]
    assert mask_utils.decode({**rle, "counts": rle["counts"].encode()}).sum() == 50 * 90
    # the datasheet shows the counts beside the paper's Table 6 row
    assert "| reported: paper | 1580 | 4405 |" in sheet.read_text()
    # a cited ground-truth box is written as the file holds it
    predictions = run_bench(bench, ScriptedGenerator({}), segmenter=None)
    assert predictions[1]["question"] == "the bench to the right of [10, 10, 60, 100]"


def test_fetch_released_takes_the_files_and_their_images_and_says_what_came(tmp_path, capsys):
    root = _hub_layout(tmp_path)
    assert (
        main(
            [
                "fetch-released",
                "--repo",
                str(root),
                "--files",
                "raw/refcocog_multi_turn.json",
                "--out",
                str(tmp_path / "fetched"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "raw/refcocog_multi_turn.json: 0.00 GB; 1 images in raw/refcocog_test_multi_bbox_images" in printed
    assert (
        main(
            [
                "fetch-released",
                "--repo",
                str(root),
                "--files",
                "raw/refcocoplus_multi_turn.json",
                "--out",
                str(tmp_path / "again"),
            ]
        )
        == 1
    )
    assert "has no raw/refcocoplus_multi_turn.json" in capsys.readouterr().err


def test_a_file_that_is_not_a_list_of_dialogues_is_one_error_naming_it(tmp_path):
    raw = tmp_path / "refcocog_multi_turn.json"
    raw.write_text('{"image_id": 1}')
    with pytest.raises(ValueError, match=r"refcocog_multi_turn\.json: expected a JSON list of dialogues"):
        convert_released(raw, None, tmp_path / "bench.json")


def test_a_datasheet_that_would_overwrite_the_converted_benchmark_is_refused(tmp_path):
    out = tmp_path / "refcocog.json"
    with pytest.raises(ValueError, match=r"refcocog\.md would write .*refcocog\.json, which is also the output"):
        convert_released(_released(tmp_path), tmp_path, out, tmp_path / "refcocog.md")
    assert not out.exists()
