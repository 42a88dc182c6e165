"""Refer loading: a malicious pickle never runs, and every bad file names the file and record."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from regionreasoner.data.refer import UnsafePickleError, load_captions, load_instances, load_refer, load_refs


def _ref(ref_id: int, ann_id: int, image_id: int = 1, split: str = "test") -> dict:
    return {
        "ref_id": ref_id,
        "ann_id": ann_id,
        "image_id": image_id,
        "split": split,
        "category_id": 1,
        "file_name": f"x_{ann_id}.jpg",
        "sent_ids": [ref_id],
        "sentences": [{"sent_id": ref_id, "sent": f"object {ann_id}", "raw": "", "tokens": []}],
    }


def _instances() -> dict:
    return {
        "images": [{"id": 1, "file_name": "one.jpg", "width": 100, "height": 80}],
        "annotations": [
            {"id": a, "image_id": 1, "category_id": 1, "bbox": [10 * a, 10, 10, 10], "segmentation": [], "iscrowd": 0}
            for a in (1, 2)
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }


def _write(tmp_path: Path, refs: object, instances: object) -> tuple[Path, Path]:
    refs_path, instances_path = tmp_path / "refs(unc).p", tmp_path / "instances.json"
    refs_path.write_bytes(pickle.dumps(refs, protocol=2))
    instances_path.write_text(json.dumps(instances))
    return refs_path, instances_path


class _Payload:
    """Pickles to a call of ``Path.touch`` on a marker: what a malicious refer file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([_ref(0, 1), {"evil": _Payload(marker)}]))
    with pytest.raises(UnsafePickleError, match=r"refs\(unc\)\.p: refused to load global"):
        load_refs(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_plain_refer_pickles_load_with_any_protocol(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "refs(umd).p"
    refs = [_ref(0, 1), _ref(1, 2)]
    path.write_bytes(pickle.dumps(refs, protocol=protocol))
    assert load_refs(path) == refs


def test_record_without_ann_id_names_file_and_record(tmp_path: Path) -> None:
    broken = _ref(1, 2)
    del broken["ann_id"]
    refs_path, _ = _write(tmp_path, [_ref(0, 1), broken], _instances())
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p: record 1 has no 'ann_id'"):
        load_refs(refs_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(sentences=[]), "record 0 has no sentences"),
        (lambda r: r.update(sentences=[{"sent_id": 1}]), "record 0 sentence 0 has no string 'sent'"),
        (lambda r: r.update(image_id="1"), "record 0 has image_id='1', expected an integer"),
    ],
)
def test_wrong_schema_names_the_record(tmp_path: Path, change, message: str) -> None:
    record = _ref(0, 1)
    change(record)
    refs_path, _ = _write(tmp_path, [record], _instances())
    with pytest.raises(ValueError, match=message):
        load_refs(refs_path)


def test_truncated_pickle_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([_ref(0, 1)] * 5, protocol=2)[:-40])
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p: not a readable refer pickle"):
        load_refs(path)


def test_truncated_instances_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(_instances())[:-30])
    with pytest.raises(ValueError, match=r"instances\.json: line \d+ column \d+: not valid JSON .*truncated download"):
        load_instances(path)


def test_annotation_without_bbox_names_file_and_record(tmp_path: Path) -> None:
    data = _instances()
    del data["annotations"][1]["bbox"]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"instances\.json: annotation 1 has no 'bbox'"):
        load_instances(path)


def test_ref_with_unknown_ann_id_names_both_files_and_the_record(tmp_path: Path) -> None:
    refs_path, instances_path = _write(tmp_path, [_ref(0, 1), _ref(1, 99)], _instances())
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p: record 1 \(ref_id 1\) has ann_id 99 .*instances\.json"):
        load_refer(refs_path, instances_path, None, ["test"])


def test_unknown_split_lists_the_splits_present(tmp_path: Path) -> None:
    refs_path, instances_path = _write(tmp_path, [_ref(0, 1)], _instances())
    with pytest.raises(ValueError, match=r"no refs in split\(s\) \['testA'\]; the file has \['test'\]"):
        load_refer(refs_path, instances_path, None, ["testA"])


def test_refs_are_grouped_by_image_one_per_object(tmp_path: Path) -> None:
    refs = [_ref(3, 2), _ref(1, 1), _ref(2, 1), _ref(4, 2, split="train")]
    refs_path, instances_path = _write(tmp_path, refs, _instances())
    (image,), coco = load_refer(refs_path, instances_path, None, ["test"])
    assert [t.ref_id for t in image.targets] == [1, 3]
    assert image.boxes == {1: (10, 10, 20, 20), 2: (20, 10, 30, 20)} and image.captions == ()
    assert coco.imgs[1]["file_name"] == "one.jpg"


def test_captions_grouped_by_image_in_annotation_order(tmp_path: Path) -> None:
    path = tmp_path / "captions.json"
    anns = [
        {"id": 9, "image_id": 1, "caption": " b "},
        {"id": 2, "image_id": 1, "caption": "a"},
        {"id": 5, "image_id": 7, "caption": "c"},
    ]
    path.write_text(json.dumps({"annotations": anns}))
    assert load_captions(path) == {1: ["a", "b"], 7: ["c"]}
