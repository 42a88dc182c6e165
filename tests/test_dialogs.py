"""RegionDial dialogues: geometry, true relations, valid citations, determinism, datasheet."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from regionreasoner.data.synth import write_synthetic_refer
from regionreasoner.dialogs.bench import build_bench
from regionreasoner.dialogs.geometry import box_iou, from_frame, int_box, to_frame
from regionreasoner.dialogs.relations import RELATIONS, check_relations, is_unique, relation_holds
from regionreasoner.dialogs.train import build_train
from regionreasoner.io import read_jsonl

CITED = re.compile(
    r"^(?P<subject>.*) (?P<phrase>" + "|".join(RELATIONS.values()) + r") bbox=\[(?P<box>-?\d+,-?\d+,-?\d+,-?\d+)\]$"
)
PHRASE_KEY = {phrase: key for key, phrase in RELATIONS.items()}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_synthetic_refer(out, images=60, seed=1)
    return out


# Geometry ---------------------------------------------------------------------------------------


def test_frame_conversion_round_trips_and_never_collapses() -> None:
    assert to_frame([64, 48, 320, 240], 640, 480, 840) == [84, 84, 420, 420]
    assert from_frame([84, 84, 420, 420], 640, 480, 840) == [64.0, 48.0, 320.0, 240.0]
    assert to_frame([0, 0, 112, 112], 112, 112, 112) == [0, 0, 112, 112]
    x1, y1, x2, y2 = to_frame([639.9, 10, 640, 10.1], 640, 480, 112)
    assert x2 > x1 and y2 > y1 and x2 <= 112


def test_box_iou_is_continuous_without_plus_one() -> None:
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0


def test_box_iou_is_zero_for_degenerate_and_overflowing_boxes() -> None:
    assert box_iou([10, 0, 0, 10], [0, 0, 10, 10]) == 0.0  # inverted: area 0, no overlap
    assert box_iou([0, 0, 0, 5], [0, 0, 0, 5]) == 0.0  # zero width: empty union
    assert box_iou([0, 0, 1e308, 1e308], [0, 0, 1e308, 1e308]) == 0.0  # inf - inf: no finite ratio


# Relations --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relation", "target", "reference", "expected"),
    [
        ("above", [0, 0, 10, 10], [5, 20, 15, 30], True),
        ("above", [0, 0, 10, 10], [20, 20, 30, 30], False),  # diagonal: shares no column
        ("below", [5, 20, 15, 30], [0, 0, 10, 10], True),
        ("left_of", [0, 0, 10, 10], [12, 5, 20, 15], True),
        ("right_of", [12, 5, 20, 15], [0, 0, 10, 10], True),
        ("right_of", [5, 0, 20, 10], [0, 0, 10, 10], False),  # overlaps
        ("inside", [2, 2, 5, 5], [0, 0, 10, 10], True),
        ("inside", [0, 0, 10, 10], [0, 0, 10, 10], False),  # same box
        ("overlapping", [5, 5, 15, 15], [0, 0, 10, 10], True),
        ("overlapping", [2, 2, 5, 5], [0, 0, 10, 10], False),  # contained, not overlapping
        ("touching", [10, 0, 20, 10], [0, 0, 10, 10], True),
        ("touching", [10.8, 2, 20, 8], [0, 0, 10, 10], True),  # within the 1 px tolerance
        ("touching", [10, 10, 20, 20], [0, 0, 10, 10], False),  # corner only
        ("touching", [13, 0, 20, 10], [0, 0, 10, 10], False),
        ("next_to", [10, 10, 20, 20], [0, 0, 10, 10], True),
        ("next_to", [14, 0, 24, 10], [0, 0, 10, 10], True),  # 4 px gap <= half of 10 px
        ("next_to", [16, 0, 26, 10], [0, 0, 10, 10], False),
    ],
)
def test_relations_are_decided_by_geometry(relation: str, target: list, reference: list, expected: bool) -> None:
    assert relation_holds(relation, target, reference) is expected


def test_uniqueness_counts_every_annotated_object() -> None:
    boxes = {1: (0, 0, 10, 10), 2: (0, 20, 10, 30), 3: (20, 0, 30, 10), 4: (0, 40, 10, 50)}
    assert is_unique("right_of", 3, 1, boxes)
    assert is_unique("above", 1, 2, boxes)  # 1 is the only box above 2
    assert not is_unique("below", 2, 1, boxes)  # 4 is below 1 as well


def test_unknown_relation_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="allowed: next_to, above"):
        check_relations(["beside"])
    assert check_relations(["touching", "above"]) == ["above", "touching"]


# Benchmark dialogues ----------------------------------------------------------------------------


def check_dialogue(dialogue: dict, image_boxes: dict[int, list[float]] | None = None) -> None:
    """The acceptance properties of a bench dialogue (used on synthetic and generated scenes)."""
    w, h = dialogue["width"], dialogue["height"]
    turns = dialogue["conversational_turns"]
    assert len({t["ann_ids"][0] for t in turns}) == len(turns)
    for index, turn in enumerate(turns):
        (box,) = turn["bboxes"]
        assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h, "box inside its image"
        (point,) = turn["points"]
        assert box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]
        source = turn["context_from_turn"]
        if source is None:
            assert turn["question"] == turn["sent"] and turn["question_template"] is None and turn["relation"] is None
            continue
        assert 0 <= source < index
        match = CITED.match(turn["question"])
        assert match, turn["question"]
        cited_box = turns[source]["bboxes"][0]
        assert [int(v) for v in match["box"].split(",")] == int_box(cited_box), "cites the earlier turn's box"
        relation = PHRASE_KEY[match["phrase"]]
        assert relation == turn["relation"] and relation_holds(relation, box, cited_box)
        assert turn["question_template"].replace("{ref_box}", "bbox=[{}]".format(match["box"])) == turn["question"]
        if match["subject"] == "the object" and image_boxes is not None:
            others = [b for b in image_boxes.values() if b != box and b != cited_box]
            assert not any(relation_holds(relation, b, cited_box) for b in others), "'the object' is unique"
        else:
            assert match["subject"] in ("the object", turn["sent"])


def test_bench_dialogues_satisfy_the_protocol_and_masks_match(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    build_bench(
        synth / "refs(unc).p", synth / "instances.json", None, synth / "images", ["train", "test"], out, max_rounds=3
    )
    dialogues = json.loads(out.read_text())
    instances = json.loads((synth / "instances.json").read_text())
    assert [d["image_id"] for d in dialogues] == sorted(d["image_id"] for d in dialogues)
    anns = {a["id"]: a for a in instances["annotations"]}
    for dialogue in dialogues:
        assert dialogue["image_path"] == str(synth / "images" / f"COCO_train2014_{dialogue['image_id']:012d}.jpg")
        assert 2 <= len(dialogue["conversational_turns"]) <= 3
        boxes = {
            a["id"]: [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
            for a in anns.values()
            if a["image_id"] == dialogue["image_id"]
        }
        check_dialogue(dialogue, boxes)
        for turn in dialogue["conversational_turns"]:
            (rle,) = turn["masks"]
            assert isinstance(rle["counts"], str)
            mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
            assert abs(int(mask.sum()) - anns[turn["ann_ids"][0]]["area"]) < 40
            x, y = turn["points"][0]
            assert mask[int(y), int(x)] == 1, "point inside the target mask"
    assert any(t["context_from_turn"] is not None for d in dialogues for t in d["conversational_turns"])


def test_same_inputs_and_seed_give_byte_identical_bench_and_training_files(synth: Path, tmp_path: Path) -> None:
    args = (synth / "refs(unc).p", synth / "instances.json", synth / "captions.json", synth / "images")
    for name in ("a", "b"):
        build_bench(
            *args, ["test", "val"], tmp_path / name / "bench.json", datasheet=tmp_path / name / "sheet.md", seed=4
        )
        build_train(*args, ["train"], tmp_path / name / "train.jsonl", frame=112, seed=4)
    for file in ("bench.json", "sheet.md", "sheet.json", "train.jsonl"):
        assert _sha(tmp_path / "a" / file) == _sha(tmp_path / "b" / file)
    build_bench(*args, ["test", "val"], tmp_path / "c.json", seed=5)
    assert _sha(tmp_path / "c.json") != _sha(tmp_path / "a" / "bench.json")


def _write_scene_files(root: Path, scenes: list[tuple[int, int, list[list[float]]]]) -> None:
    images, anns, refs = [], [], []
    for image_id, (width, height, boxes) in enumerate(scenes, start=1):
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": width, "height": height})
        for x1, y1, x2, y2 in boxes:
            ann_id = len(anns) + 1
            poly = [x1, y1, x2, y1, x2, y2, x1, y2]
            anns.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "segmentation": [poly],
                    "iscrowd": 0,
                }
            )
            sentences = [{"sent_id": 2 * ann_id + k, "sent": f"thing {ann_id} {k}"} for k in range(2)]
            refs.append(
                {
                    "ref_id": ann_id,
                    "ann_id": ann_id,
                    "image_id": image_id,
                    "split": "test",
                    "category_id": 1,
                    "sentences": sentences,
                }
            )
    (root / "instances.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]})
    )
    (root / "refs(umd).p").write_bytes(pickle.dumps(refs, protocol=2))


@st.composite
def scenes(draw: st.DrawFn) -> list[tuple[int, int, list[list[float]]]]:
    result = []
    for _ in range(draw(st.integers(1, 3))):
        width, height = draw(st.integers(20, 200)), draw(st.integers(20, 200))
        boxes = []
        for _ in range(draw(st.integers(2, 9))):
            x1 = draw(st.integers(0, width - 2) | st.floats(0, width - 2, allow_nan=False))
            y1 = draw(st.integers(0, height - 2))
            x2 = draw(st.integers(int(x1) + 2, width))
            y2 = draw(st.integers(y1 + 1, height))
            boxes.append([x1, y1, x2, y2])
        result.append((width, height, boxes))
    return result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(), st.integers(0, 3), st.integers(2, 7))
def test_every_generated_dialogue_names_true_relations_and_earlier_boxes(
    scene_list, seed: int, max_rounds: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_scene_files(root, scene_list)
        build_bench(
            root / "refs(umd).p",
            root / "instances.json",
            None,
            root,
            ["test"],
            root / "bench.json",
            seed=seed,
            max_rounds=max_rounds,
        )
        dialogues = json.loads((root / "bench.json").read_text())
    assert len(dialogues) == len(scene_list)
    for dialogue, (_, _, boxes) in zip(dialogues, scene_list, strict=True):
        assert len(dialogue["conversational_turns"]) == min(len(boxes), max_rounds)
        image_boxes = {i: [round(v, 2) for v in b] for i, b in enumerate(boxes)}  # COCO precision, as written
        check_dialogue(dialogue, image_boxes)
        for turn in dialogue["conversational_turns"]:
            assert turn["sent"] in {f"thing {turn['ann_ids'][0]} {k}" for k in range(2)}


def test_real_style_refs_with_rle_and_concave_masks(tmp_path: Path) -> None:
    """Several sentences per ref, a crowd RLE mask and an L-shaped mask whose box centre is outside it."""
    l_shape = [0, 0, 40, 0, 40, 10, 10, 10, 10, 40, 0, 40]
    crowd = mask_utils.encode(np.asfortranarray(np.pad(np.ones((10, 10), np.uint8), ((50, 20), (50, 20)))))
    anns = [
        {"id": 1, "image_id": 5, "category_id": 1, "bbox": [0, 0, 40, 40], "segmentation": [l_shape], "iscrowd": 0},
        {
            "id": 2,
            "image_id": 5,
            "category_id": 1,
            "bbox": [50, 50, 10, 10],
            "segmentation": {"size": [80, 80], "counts": crowd["counts"].decode()},
            "iscrowd": 1,
        },
    ]
    (tmp_path / "instances.json").write_text(
        json.dumps(
            {
                "images": [{"id": 5, "file_name": "5.jpg", "width": 80, "height": 80}],
                "annotations": anns,
                "categories": [{"id": 1, "name": "person"}],
            }
        )
    )
    refs = [
        {
            "ref_id": i,
            "ann_id": i,
            "image_id": 5,
            "split": "testA",
            "category_id": 1,
            "sentences": [{"sent_id": 10 * i + k, "sent": f"person {i} take {k}"} for k in range(3)],
        }
        for i in (1, 2)
    ]
    (tmp_path / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    build_bench(
        tmp_path / "refs(unc).p",
        tmp_path / "instances.json",
        None,
        Path("coco/train2014"),
        ["testA"],
        tmp_path / "b.json",
    )
    (dialogue,) = json.loads((tmp_path / "b.json").read_text())
    assert dialogue["image_path"] == "coco/train2014/5.jpg"
    by_ann = {t["ann_ids"][0]: t for t in dialogue["conversational_turns"]}
    x, y = by_ann[1]["points"][0]
    assert x < 10 or y < 10, "point on the L, not the box centre (20, 20)"
    assert by_ann[2]["points"][0] == [55.0, 55.0]
    assert by_ann[2]["masks"][0]["counts"] == crowd["counts"].decode()
    check_dialogue(dialogue)


def test_datasheet_reports_table6_layout_beside_reported(
    synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sheet = tmp_path / "datasheet.md"
    reported = {"images": 715, "turns": 2355, "rounds": [715, 715, 310, 260, 160, 110, 85]}
    build_bench(
        synth / "refs(unc).p",
        synth / "instances.json",
        None,
        synth / "images",
        ["train"],
        tmp_path / "b.json",
        datasheet=sheet,
        reported=reported,
    )
    stats = json.loads(sheet.with_suffix(".json").read_text())
    dialogues = json.loads((tmp_path / "b.json").read_text())
    assert stats["images"] == stats["dialogues"] == len(dialogues)
    assert stats["turns"] == sum(stats["turns_per_round"]) == sum(len(d["conversational_turns"]) for d in dialogues)
    assert stats["turns_per_round"][0] == stats["turns_per_round"][1] == len(dialogues)
    assert sum(stats["relation_templates"].values()) == stats["cited_turns"]
    assert set(stats["categories"]) <= {"circle", "square", "triangle"}
    text = sheet.read_text()
    assert "|  | reported: paper | 715 | 2355 | 715 | 715 | 310 | 260 | 160 | 110 | 85 |" in text
    assert "| R1 | R2 | R3 | R4 | R5 | R6 | R7 |" in text
    assert "reported: paper" in capsys.readouterr().out


# Training turns ---------------------------------------------------------------------------------


def test_training_turns_cite_true_relations_in_frame_coordinates(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    build_train(
        synth / "refs(unc).p",
        synth / "instances.json",
        synth / "captions.json",
        synth / "images",
        ["train"],
        out,
        frame=224,
        cited_fraction=1.0,
    )
    rows = read_jsonl(out)
    instances = json.loads((synth / "instances.json").read_text())
    size = {image["id"]: (image["width"], image["height"]) for image in instances["images"]}
    # every ground-truth box of the scenes in the 224 frame (COCO boxes are x, y, w, h in image pixels)
    truth = {
        tuple(to_frame([x, y, x + w, y + h], *size[a["image_id"]], 224))
        for a in instances["annotations"]
        for x, y, w, h in [a["bbox"]]
    }
    refs = pickle.loads((synth / "refs(unc).p").read_bytes())
    train_refs = [r for r in refs if r["split"] == "train"]
    first = [r for r in rows if r["round"] == 1]
    cited = [r for r in rows if r["round"] == 2]
    assert len(first) == len(train_refs) and cited
    assert len({r["id"] for r in rows}) == len(rows)
    for row in first:
        assert (
            row["problem"] == row["target"]
            and row["reference_boxes"] == []
            and row["focus"] == ""
            and row["relation"] is None
        )
        assert row["scene"].endswith("on a coloured grid.")
    for row in cited:
        ((x1, y1, x2, y2),) = row["reference_boxes"]
        match = CITED.match(row["problem"])
        assert match and [int(v) for v in match["box"].split(",")] == [x1, y1, x2, y2]
        target = row["solution"][0]["bbox_2d"]
        assert all(v % 56 == 0 for v in target + [x1, y1, x2, y2]), "cell bounds scaled by 224/112"
        assert relation_holds(row["relation"], target, [x1, y1, x2, y2])
        assert row["focus"] != row["target"] and row["focus"].startswith("the ")
        px, py = row["solution"][0]["point_2d"]
        assert target[0] < px < target[2] and target[1] < py < target[3]
        assert {tuple(target), (x1, y1, x2, y2)} <= truth, "the cited and target boxes are ground-truth objects"


def test_cited_fraction_zero_gives_single_round_turns(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    build_train(
        synth / "refs(unc).p",
        synth / "instances.json",
        None,
        synth / "images",
        ["val"],
        out,
        frame=112,
        cited_fraction=0.0,
    )
    rows = read_jsonl(out)
    assert rows and all(r["round"] == 1 and r["scene"] == "" for r in rows)
