"""The authors' released RegionDial-Bench files as benchmark records (``bench.source: released``).

The released test sets (hub dataset lmsdss/regionreasoner_test_data, raw/{refcocoplus,refcocog}
_multi_turn.json, docs/method.md sections 1-2) hold ``image_id``, ``image_path`` and turns with
``question``, ``bboxes``, optional ``context_from_turn``, ``ann_ids`` and RLE ``masks``. Converting
them to the records the builder writes lets the same evaluator, metrics and datasheet run on the
paper's own benchmark, so a user can compare it with the rebuilt one (they differ: 2,289 / 4,115
turns released against 2,355 / 4,405 reported).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from regionreasoner.dialogs.datasheet import describe_bench, write_datasheet
from regionreasoner.dialogs.geometry import point_inside, segmentation_rle
from regionreasoner.dialogs.relations import RELATIONS, REF_BOX
from regionreasoner.io import atomic_write_json

_CITED_BOX = re.compile(r"bbox\s*=?\s*\[[^\]]{0,80}\]")


def _relation(question: str) -> str | None:
    """The relation template a question uses, by its phrase (longest phrase first)."""
    lowered = question.lower()
    for key, phrase in sorted(RELATIONS.items(), key=lambda kv: -len(kv[1])):
        if phrase in lowered:
            return key
    return None


def _turn(raw: Path, index: int, number: int, turn: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    where = f"{raw}: dialogue {index} turn {number}"
    try:
        question, boxes, masks = turn["question"], turn["bboxes"], turn.get("masks") or []
    except KeyError as err:
        raise ValueError(f"{where} has no {err.args[0]!r}") from None
    if not boxes:
        raise ValueError(f"{where} has no target box")
    cited = turn.get("context_from_turn")
    if cited is not None and not 0 <= int(cited) < number:
        raise ValueError(f"{where}: context_from_turn {cited} does not point to an earlier turn")
    box = [float(v) for v in boxes[0]]
    segmentation = masks[0] if masks else [[box[0], box[1], box[2], box[1], box[2], box[3], box[0], box[3]]]
    template = _CITED_BOX.sub(REF_BOX, question, count=1) if cited is not None else None
    return {
        "question": question,
        "question_template": template if template and REF_BOX in template else None,
        "relation": _relation(question) if cited is not None else None,
        "context_from_turn": int(cited) if cited is not None else None,
        "bboxes": [[float(v) for v in b] for b in boxes],
        "points": [point_inside(segmentation, box, width, height)],
        "ann_ids": list(turn.get("ann_ids") or [-1]),
        "ref_id": int((turn.get("ann_ids") or [-1])[0]),
        "sent": question,
        "masks": [segmentation_rle(m, box, width, height) for m in masks],
    }


def _size(record: dict[str, Any], image: Path) -> tuple[int, int]:
    """Width and height: from the masks' RLE size when present, else from the image file."""
    for turn in record["conversational_turns"]:
        for mask in turn.get("masks") or []:
            if isinstance(mask, dict) and "size" in mask:
                height, width = mask["size"]
                return int(width), int(height)
    from PIL import Image

    with Image.open(image) as handle:
        return handle.size


def convert_released(raw: Path, image_root: Path, out: Path, datasheet: Path | None = None,
                     reported: dict | None = None) -> None:
    """Write the released dialogues of ``raw`` as bench records (+ datasheet), images under ``image_root``."""
    try:
        records = json.loads(Path(raw).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{raw}: cannot read the released benchmark ({err})") from None
    if not isinstance(records, list):
        raise ValueError(f"{raw}: expected a list of dialogues")
    dialogues = []
    for index, record in enumerate(records):
        image = Path(image_root) / record["image_path"]
        width, height = _size(record, image)
        turns = [_turn(raw, index, n, t, width, height) for n, t in enumerate(record["conversational_turns"])]
        dialogues.append({"image_id": record["image_id"], "image_path": str(image), "width": width,
                          "height": height, "conversational_turns": turns})
    atomic_write_json(out, dialogues)
    print(f"converted {len(dialogues)} released dialogues from {raw} to {out}")
    if datasheet is not None:
        categories = {t["ann_ids"][0]: "unknown" for d in dialogues for t in d["conversational_turns"]}
        stats = describe_bench(dialogues, categories, {"source": "released", "file": str(raw)}, reported)
        write_datasheet(Path(datasheet), stats)

