"""The authors' released RegionDial-Bench files as benchmark records (``bench.source: released``).

The released test sets (hub dataset lmsdss/regionreasoner_test_data, raw/{refcocoplus,refcocog}
_multi_turn.json, docs/method.md sections 1-2) are read exactly as the authors' evaluation reads them
(lmsdss/RegionReasoner @ f34dbfcbc9871121bcb5fe48c26da61b828aa4e6,
test/evaluation/evaluation_multi_segmentation.py): a JSON list of dialogues with ``image_id``,
``image_path`` and ``conversational_turns``; each turn has ``question`` and ``bboxes`` (the first
box is the target), optionally ``context_from_turn`` (the index of the cited turn), ``ann_ids``
and ``masks`` (the first mask is the target). Any other key is ignored, as there.

A cited turn's question holds the literal placeholder ``<box>{context_bbox}</box>``. At test
time the authors replace it by ``str(box)``, the model's own box for the cited turn in original
pixels (``[x1, y1, x2, y2]``, integers), or by the cited turn's ground-truth box when that turn has
no prediction (no box predicted, or it is not asked yet: a few released turns cite themselves or a
later turn). A cited turn without the placeholder, and a placeholder in a turn that cites nothing,
are asked as written. The converted turns keep that protocol: ``question_template`` holds the
question with ``{ref_box}`` in place of the placeholder and ``ref_box_format`` says to write the box
the authors' way (``released_box_text``); the evaluator fills it and counts ground-truth fallbacks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from regionreasoner.dialogs.datasheet import check_datasheet_paths, describe_bench, write_datasheet
from regionreasoner.dialogs.geometry import point_inside, segmentation_rle
from regionreasoner.dialogs.relations import REF_BOX, RELATIONS
from regionreasoner.images import image_size
from regionreasoner.io import InputError, atomic_write_json, missing

PLACEHOLDER = "<box>{context_bbox}</box>"
"""The cited-box placeholder of the released questions, replaced as a whole (tags included)."""

RELEASED_FORMAT = "released"
"""``ref_box_format`` of converted turns: the cited box is written by ``released_box_text``."""


def released_box_text(box: list[float]) -> str:
    """A cited box written as the authors' evaluation writes it: ``str`` of the box's list.

    Their predicted boxes are integers computed from the model's output (``evaluate.answers``), so
    ``[12, 30, 96, 200]`` with ", " separators and no ``bbox=`` prefix; a ground-truth box is written
    as the file holds it (integers, or a float where the file has one).
    """
    return "[" + ", ".join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in box) + "]"


def _relation(question: str) -> str | None:
    """The relation template a question uses, by its phrase (longest phrase first)."""
    lowered = question.lower()
    for key, phrase in sorted(RELATIONS.items(), key=lambda kv: -len(kv[1])):
        if phrase in lowered:
            return key
    return None


def _target_rle(mask: Any, box: list[float], width: int, height: int) -> dict[str, Any]:
    """A released target mask as compressed RLE: COCO RLE / polygons, or a dense 0/1 array.

    The authors read ``np.array(turn["masks"][0])`` as an image-sized boolean mask, so a nested list
    of ``height`` rows of ``width`` values is a dense mask here too.
    """
    rows_fit = isinstance(mask, list) and len(mask) == height
    if rows_fit and all(isinstance(row, list) and len(row) == width for row in mask):
        mask = mask_utils.encode(np.asfortranarray((np.asarray(mask) != 0).astype(np.uint8)))
    return segmentation_rle(mask, box, width, height)


def _turn(where: str, number: int, turns: int, turn: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    where = f"{where} turn {number}"
    try:
        question, boxes = turn["question"], turn["bboxes"]
    except KeyError as err:
        raise ValueError(f"{where} has no {err.args[0]!r}") from None
    if not boxes:
        raise ValueError(f"{where} has no target box")
    cited = turn.get("context_from_turn")
    if cited is not None and not (isinstance(cited, int) and 0 <= cited < turns):
        raise ValueError(f"{where}: context_from_turn {cited!r} is not a turn of this dialogue (0..{turns - 1})")
    box = [float(v) for v in boxes[0]]
    masks = [_target_rle(m, box, width, height) for m in turn.get("masks") or []]
    ann_ids = list(turn.get("ann_ids") or [-1])
    filled = cited is not None and PLACEHOLDER in question
    return {
        "question": question,
        "question_template": question.replace(PLACEHOLDER, REF_BOX) if filled else None,
        "ref_box_format": RELEASED_FORMAT,
        "relation": _relation(question) if cited is not None else None,
        "context_from_turn": cited,
        "bboxes": [[float(v) for v in b] for b in boxes],
        "points": [point_inside(masks[0] if masks else [], box, width, height)],
        "ann_ids": ann_ids,
        "ref_id": ann_ids[0],
        "sent": question,
        "masks": masks,
    }


def _image(raw: Path, image_root: Path, index: int, record: dict[str, Any]) -> Path:
    """The record's image path under ``image_root``; a clear error when it is absent."""
    where = f"{raw}: dialogue {index} (image_id {record.get('image_id')!r})"
    if "image_path" not in record:
        raise ValueError(f"{where} has no 'image_path'")
    image = Path(image_root) / record["image_path"]
    if not image.is_file():
        raise FileNotFoundError(
            f"{where}: image not found at {image}; check that --images is the folder the "
            "released image_path values are relative to"
        )
    return image


CITATION_KEYS = (
    "cited_with_placeholder",
    "cited_without_placeholder",
    "placeholder_without_citation",
    "cites_itself_or_a_later_turn",
)


def count_citations(record: dict[str, Any], counts: Counter[str]) -> None:
    """Add how one released dialogue's questions cite: what the evaluator fills and what it asks as written."""
    for number, turn in enumerate(record["conversational_turns"]):
        cited, holds = turn.get("context_from_turn"), PLACEHOLDER in turn["question"]
        counts["cited_with_placeholder"] += cited is not None and holds
        counts["cited_without_placeholder"] += cited is not None and not holds
        counts["placeholder_without_citation"] += cited is None and holds
        counts["cites_itself_or_a_later_turn"] += cited is not None and cited >= number


def placeholder_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """``count_citations`` over every dialogue of a released file."""
    counts: Counter[str] = Counter()
    for record in records:
        count_citations(record, counts)
    return {key: counts[key] for key in CITATION_KEYS}


def released_records(raw: Path) -> Iterator[dict[str, Any]]:
    """The dialogues of a released file, one at a time.

    The hub's files (lmsdss/regionreasoner_test_data, ``raw/*_multi_turn.json``) hold every target
    mask as a dense 0/1 array: 13 GB for RefCOCO+, 26 GB for RefCOCOg. They are read as a stream
    (ijson), so memory holds one dialogue, never the file.
    """
    import ijson

    if not Path(raw).is_file():
        raise missing(raw)
    try:
        with open(raw, "rb") as handle:
            head = handle.read(64).lstrip()
            if not head.startswith(b"["):
                raise InputError(f"{raw}: expected a JSON list of dialogues; is this a released *{RELEASED_SUFFIX}?")
            handle.seek(0)
            yield from ijson.items(handle, "item", use_float=True)
    except OSError as err:
        raise InputError(f"{raw}: cannot read the released benchmark ({err}); check the path") from None
    except ijson.JSONError as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{raw}: not valid JSON ({detail}); truncated? fetch it again (fetch-released)") from None


RELEASED_SUFFIX = "_multi_turn.json"


def image_folder(file: str) -> str:
    """The images of a released file in the hub layout: ``raw/refcocog_multi_turn.json`` ->
    ``raw/refcocog_test_multi_bbox_images`` (its records' ``image_path`` values start with that folder's name)."""
    if not file.endswith(RELEASED_SUFFIX):
        raise ValueError(f"{file}: a released benchmark file is named <name>{RELEASED_SUFFIX}")
    return file.removesuffix(RELEASED_SUFFIX) + "_test_multi_bbox_images"


def fetch_released(repo: str, out: Path, files: list[str]) -> None:
    """Download the released files and their image folders only (not the whole dataset), and say what came.

    The JSON files are large (13 and 26 GB: dense masks), so they are counted by ``convert-released``,
    which streams them; here each file's size and its number of images are printed.
    """
    from regionreasoner.models.registry import fetch_model

    patterns = [pattern for file in files for pattern in (file, f"{image_folder(file)}/*")]
    fetch_model(repo, Path(out), repo_type="dataset", allow_patterns=patterns)
    for file in files:
        path, images = Path(out) / file, Path(out) / image_folder(file)
        if not path.is_file():
            raise FileNotFoundError(f"{repo}: has no {file} (bench.released.files)")
        count = sum(1 for _ in images.iterdir()) if images.is_dir() else 0
        print(f"{file}: {path.stat().st_size / 1e9:.2f} GB; {count} images in {image_folder(file)}")


def convert_released(
    raw: Path, image_root: Path | None, out: Path, datasheet: Path | None = None, reported: dict | None = None
) -> dict[str, Any]:
    """Write the released dialogues of ``raw`` as bench records (+ datasheet); returns the counts printed.

    ``image_root``: the folder the records' ``image_path`` values are relative to; None: the folder
    of ``raw`` (the hub layout: ``raw/refcocog_multi_turn.json`` beside
    ``raw/refcocog_test_multi_bbox_images/``).
    """
    raw = Path(raw)
    image_root = raw.parent if image_root is None else Path(image_root)
    if datasheet is not None:
        check_datasheet_paths(Path(datasheet), Path(out))
    dialogues, citations = [], Counter()
    for index, record in enumerate(released_records(raw)):
        if not isinstance(record, dict) or not isinstance(record.get("conversational_turns"), list):
            raise ValueError(f"{raw}: dialogue {index} has no 'conversational_turns' list")
        image = _image(raw, image_root, index, record)
        width, height = image_size(image)  # the evaluator opens it anyway
        where = f"{raw}: dialogue {index} (image_id {record.get('image_id')!r})"
        turns = record["conversational_turns"]
        dialogues.append(
            {
                "image_id": record.get("image_id"),
                "image_path": str(image),
                "width": width,
                "height": height,
                "conversational_turns": [_turn(where, n, len(turns), t, width, height) for n, t in enumerate(turns)],
            }
        )
        count_citations(record, citations)
    atomic_write_json(out, dialogues)
    turns = [t for d in dialogues for t in d["conversational_turns"]]
    counts = {
        "dialogues": len(dialogues),
        "turns": len(turns),
        "turns_with_target_mask": sum(bool(t["masks"]) for t in turns),
        "citations": {key: citations[key] for key in CITATION_KEYS},
    }
    paper = f" (paper, Table 6: {reported['images']} images, {reported['turns']} turns)" if reported else ""
    print(
        f"converted {raw} to {out}: {counts['dialogues']} dialogues, {counts['turns']} turns{paper}, "
        f"{counts['turns_with_target_mask']} with a target mask; citations: {counts['citations']}"
    )
    if datasheet is not None:
        categories = {t["ann_ids"][0]: "unknown" for t in turns}
        settings = {
            "source": "released",
            "file": str(raw),
            "citations": counts["citations"],
            "turns_with_target_mask": counts["turns_with_target_mask"],
        }
        write_datasheet(Path(datasheet), describe_bench(dialogues, categories, settings, reported))
    return counts
