"""Safe, validated loading of referring-expression data (docs/method.md section 1).

RefCOCO / RefCOCO+ / RefCOCOg ship ``refs(<splitBy>).p`` (a Python pickle) beside a COCO
``instances.json``; captions come from COCO ``captions_train2014.json``. A pickle from the internet
can run arbitrary code when loaded, so ``load_refs`` uses an unpickler that refuses every global:
refer files are plain lists of dicts, and only builtin containers and scalars can be rebuilt
without looking up a global. Every malformed file raises an error naming the file and the record.
"""

from __future__ import annotations

import contextlib
import io
import math
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO

from regionreasoner.dialogs.geometry import xywh_to_xyxy
from regionreasoner.io import missing, read_json


class UnsafePickleError(pickle.UnpicklingError):
    """A refer pickle tried to load a global (class or function): refused, nothing was run."""


class _ContainersOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds builtin containers and scalars only.

    Lists, dicts, tuples, str, bytes, int, float, bool and None have their own opcodes; anything
    else (classes, functions, ``os.system`` via REDUCE) needs ``find_class``, which refuses.
    """

    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        super().__init__(file, encoding="utf-8")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(
            f"{self._path}: refused to load global {module}.{name}; refer files must hold only "
            "lists, dicts and scalars (is this file from a trusted source?)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._path}: refused persistent id {pid!r}")


_REF_INT_KEYS = ("ref_id", "ann_id", "image_id", "category_id")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_ref(path: Path, index: int, record: Any) -> None:
    where = f"{path}: record {index}"
    if not isinstance(record, dict):
        raise ValueError(f"{where} is a {type(record).__name__}, expected a dict")
    for key in (*_REF_INT_KEYS, "split", "sentences"):
        if key not in record:
            raise ValueError(f"{where} has no {key!r}")
    for key in _REF_INT_KEYS:
        if not _is_int(record[key]):
            raise ValueError(f"{where} has {key}={record[key]!r}, expected an integer")
    if not isinstance(record["split"], str):
        raise ValueError(f"{where} has split={record['split']!r}, expected a string")
    sentences = record["sentences"]
    if not isinstance(sentences, list) or not sentences:
        raise ValueError(f"{where} has no sentences (expected a non-empty list)")
    for number, sentence in enumerate(sentences):
        if not isinstance(sentence, dict) or not _is_int(sentence.get("sent_id")):
            raise ValueError(f"{where} sentence {number} has no integer 'sent_id'")
        if not isinstance(sentence.get("sent"), str):
            raise ValueError(f"{where} sentence {number} has no string 'sent'")


def load_refs(path: Path) -> list[dict]:
    """Load and validate a refer pickle (``refs(unc).p`` etc.) without running any code in it.

    Each record needs ``ref_id``, ``ann_id``, ``image_id``, ``split``, ``category_id`` and
    ``sentences`` = ``[{sent_id, sent}, ...]``; otherwise ``ValueError("<file>: record 17 has no
    'ann_id'")``. A pickle that references any global raises :class:`UnsafePickleError`.
    """
    path = Path(path)
    if not path.is_file():
        raise missing(path)
    try:
        with path.open("rb") as handle:
            refs = _ContainersOnlyUnpickler(handle, path).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, UnicodeDecodeError, ValueError, TypeError) as err:
        raise ValueError(
            f"{path}: not a readable refer pickle ({type(err).__name__}: {err}); download it again or check --refs"
        ) from None
    if not isinstance(refs, list):
        raise ValueError(f"{path}: holds a {type(refs).__name__}, expected a list of ref records; check --refs")
    for index, record in enumerate(refs):
        _check_ref(path, index, record)
    return refs


def _require(path: Path, where: str, record: Any, keys: Iterable[str]) -> None:
    if not isinstance(record, dict):
        raise ValueError(
            f"{path}: {where} is a {type(record).__name__}, expected an object; is this a COCO instances.json?"
        )
    for key in keys:
        if key not in record:
            raise ValueError(f"{path}: {where} has no {key!r}; is this a COCO instances.json? download it again")


def _check_instances(path: Path, data: Any) -> None:
    _require(path, "top level", data, ("images", "annotations", "categories"))
    image_ids = set()
    for index, image in enumerate(data["images"]):
        _require(path, f"image {index}", image, ("id", "file_name", "width", "height"))
        if not all(_is_int(image[key]) and image[key] > 0 for key in ("width", "height")):
            raise ValueError(f"{path}: image {index} (id {image['id']}) has no positive integer width/height")
        image_ids.add(image["id"])
    category_ids = set()
    for index, category in enumerate(data["categories"]):
        _require(path, f"category {index}", category, ("id", "name"))
        category_ids.add(category["id"])
    for index, ann in enumerate(data["annotations"]):
        where = f"annotation {index}"
        _require(path, where, ann, ("id", "image_id", "category_id", "bbox", "segmentation"))
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            raise ValueError(f"{path}: {where} (id {ann['id']}) has bbox {bbox!r}, expected [x, y, w, h]")
        if ann["image_id"] not in image_ids:
            raise ValueError(f"{path}: {where} (id {ann['id']}) has unknown image_id {ann['image_id']}")
        if ann["category_id"] not in category_ids:
            raise ValueError(f"{path}: {where} (id {ann['id']}) has unknown category_id {ann['category_id']}")


def load_instances(path: Path) -> COCO:
    """Load and validate a COCO ``instances.json`` into a pycocotools index.

    Truncated JSON, missing keys, annotations of unknown images or categories: ``ValueError``
    naming the file and the record.
    """
    path = Path(path)
    data = read_json(path, fix="truncated download? download it again")
    _check_instances(path, data)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def check_refs_against_instances(refs: list[dict], refs_path: Path, coco: COCO, instances_path: Path) -> None:
    """Every ref must point at an annotation of ``instances.json`` on the same image."""
    for index, ref in enumerate(refs):
        ann = coco.anns.get(ref["ann_id"])
        if ann is None:
            raise ValueError(
                f"{refs_path}: record {index} (ref_id {ref['ref_id']}) has ann_id {ref['ann_id']} "
                f"that {instances_path} does not contain (refs and instances from different datasets?)"
            )
        if ann["image_id"] != ref["image_id"]:
            raise ValueError(
                f"{refs_path}: record {index} (ref_id {ref['ref_id']}) has image_id {ref['image_id']} "
                f"but its annotation {ref['ann_id']} in {instances_path} is on image {ann['image_id']}"
            )


def load_captions(path: Path) -> dict[int, list[str]]:
    """COCO captions file -> ``{image_id: [caption, ...]}`` in annotation-id order."""
    path = Path(path)
    data = read_json(path, fix="truncated download? download it again")
    _require(path, "top level", data, ("annotations",))
    rows = []
    for index, ann in enumerate(data["annotations"]):
        _require(path, f"annotation {index}", ann, ("id", "image_id", "caption"))
        if not isinstance(ann["caption"], str):
            raise ValueError(f"{path}: annotation {index} (id {ann['id']}) has a non-string caption")
        rows.append((ann["image_id"], ann["id"], ann["caption"].strip()))
    captions: dict[int, list[str]] = {}
    for image_id, _, caption in sorted(rows):
        captions.setdefault(image_id, []).append(caption)
    return captions


@dataclass(frozen=True)
class Target:
    """One referred object: an annotation with its referring sentences."""

    ref_id: int
    ann_id: int
    category_id: int
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class ReferImage:
    """An image with every annotated box (for relations and uniqueness) and its referred objects."""

    image_id: int
    file_name: str
    width: int
    height: int
    boxes: Mapping[int, tuple[float, float, float, float]]
    targets: tuple[Target, ...]
    captions: tuple[str, ...]


def _clipped_box(bbox: list[float], width: int, height: int) -> tuple[float, float, float, float]:
    """COCO box -> ``[x1, y1, x2, y2]`` clipped to the image, at COCO's 2-decimal precision (no float noise)."""
    x1, y1, x2, y2 = (round(v, 2) for v in xywh_to_xyxy(bbox))
    return (min(max(x1, 0), width), min(max(y1, 0), height), min(max(x2, 0), width), min(max(y2, 0), height))


def load_refer(
    refs_path: Path, instances_path: Path, captions_path: Path | None, splits: list[str]
) -> tuple[list[ReferImage], COCO]:
    """Load a refer set and group the refs of ``splits`` by image, in image-id order.

    Within an image, targets are in ref-id order and one ref is kept per annotation (a dialogue
    never asks twice for the same object). Boxes are clipped to the image.
    """
    refs_path, instances_path = Path(refs_path), Path(instances_path)
    refs = load_refs(refs_path)
    coco = load_instances(instances_path)
    check_refs_against_instances(refs, refs_path, coco, instances_path)
    present = sorted({ref["split"] for ref in refs})
    missing = [split for split in splits if split not in present]
    if missing:
        raise ValueError(f"{refs_path}: no refs in split(s) {missing}; the file has {present}")
    captions = load_captions(Path(captions_path)) if captions_path is not None else {}
    wanted = set(splits)
    by_image: dict[int, dict[int, Target]] = {}
    for ref in sorted(refs, key=lambda r: r["ref_id"]):
        if ref["split"] not in wanted:
            continue
        targets = by_image.setdefault(ref["image_id"], {})
        if ref["ann_id"] not in targets:
            sentences = tuple(s["sent"].strip() for s in ref["sentences"])
            targets[ref["ann_id"]] = Target(ref["ref_id"], ref["ann_id"], ref["category_id"], sentences)
    images = []
    for image_id in sorted(by_image):
        info = coco.imgs[image_id]
        width, height = info["width"], info["height"]
        boxes = {
            ann["id"]: _clipped_box(ann["bbox"], width, height)
            for ann in sorted(coco.imgToAnns[image_id], key=lambda a: a["id"])
        }
        images.append(
            ReferImage(
                image_id=image_id,
                file_name=info["file_name"],
                width=width,
                height=height,
                boxes=boxes,
                targets=tuple(by_image[image_id].values()),
                captions=tuple(captions.get(image_id, ())),
            )
        )
    return images, coco
