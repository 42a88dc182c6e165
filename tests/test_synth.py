"""Synthetic refer scenes: real on-disk formats, the learnable recipe, byte-identical per seed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from regionreasoner.data.refer import load_captions, load_instances, load_refs
from regionreasoner.data.synth import COLOURS, INSET, cell_background, write_synthetic_refer


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_synthetic_refer(out, images=30, seed=3)
    return out


def test_writes_coco_refer_and_caption_files(synth: Path) -> None:
    coco = load_instances(synth / "instances.json")
    refs = load_refs(synth / "refs(unc).p")
    captions = load_captions(synth / "captions.json")
    assert len(coco.imgs) == 30 and len(list((synth / "images").glob("*.jpg"))) == 30
    assert len(refs) == len(coco.anns)
    for ref in refs:
        ann = coco.anns[ref["ann_id"]]
        assert ann["image_id"] == ref["image_id"] and ann["category_id"] == ref["category_id"]
        (sentence,) = ref["sentences"]
        colour, shape = sentence["sent"].split()[1:]
        assert sentence["sent"] == f"the {colour} {shape}" and sentence["tokens"] == sentence["sent"].split()
        assert coco.cats[ann["category_id"]]["name"] == shape and colour in COLOURS
        assert ref["sent_ids"] == [sentence["sent_id"]]
    assert set(captions) == set(coco.imgs)
    assert captions[1][0].endswith(" on a coloured grid.")


def test_scenes_follow_the_learnable_recipe(synth: Path) -> None:
    coco = load_instances(synth / "instances.json")
    refs = load_refs(synth / "refs(unc).p")
    colour_of = {r["ann_id"]: r["sentences"][0]["sent"].split()[1] for r in refs}
    for image_id, image in coco.imgs.items():
        anns = coco.imgToAnns[image_id]
        assert 2 <= len(anns) <= 4 and (image["width"], image["height"]) == (112, 112)
        assert len({colour_of[a["id"]] for a in anns}) == len(anns), "colours unique within an image"
        assert len({tuple(a["bbox"]) for a in anns}) == len(anns), "one object per cell"
        pixels = Image.open(synth / "images" / image["file_name"]).convert("RGB")
        for ann in anns:
            x, y, w, h = ann["bbox"]
            assert x % 28 == 0 and y % 28 == 0 and w == h == 28, "box = cell bounds"
            xs, ys = ann["segmentation"][0][0::2], ann["segmentation"][0][1::2]
            assert (
                min(xs) >= x + INSET and max(xs) <= x + w - INSET and min(ys) >= y + INSET and max(ys) <= y + h - INSET
            )
            centre = pixels.getpixel((x + 14, y + 16))
            assert all(abs(a - b) <= 40 for a, b in zip(centre, COLOURS[colour_of[ann["id"]]], strict=True))
        corner = pixels.getpixel((1, 1))  # the top-left cell's background border (objects are inset)
        assert all(abs(a - b) <= 12 for a, b in zip(corner, cell_background(0, 0), strict=True))


def test_splits_are_by_image(synth: Path) -> None:
    refs = load_refs(synth / "refs(unc).p")
    split_of: dict[int, str] = {}
    for ref in refs:
        assert split_of.setdefault(ref["image_id"], ref["split"]) == ref["split"]
    counts = {name: list(split_of.values()).count(name) for name in ("train", "val", "test")}
    assert counts == {"train": 24, "val": 3, "test": 3}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_synthetic_refer(tmp_path / name, images=8, seed=seed, split_by="umd")
    assert (tmp_path / "a" / "refs(umd).p").exists()
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a") != _digests(tmp_path / "c")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_objects": 5}, "colours are unique"),
        ({"image_size": 280}, "background colour"),
        ({"splits": {"train": 0.5}}, "sum to 1"),
    ],
)
def test_rejects_settings_outside_the_recipe(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_synthetic_refer(tmp_path, images=2, seed=0, **kwargs)
