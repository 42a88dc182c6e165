"""Training turns of RegionDial (docs/method.md section 3), one RL/SFT sample per line.

Every ref gives a round-1 turn asking its sentence. For ``cited_fraction`` of the refs (a seeded
draw per ref) a round-2 turn asks for the same target again, now citing another referred object of
the image by its ground-truth box with a relation that truly holds (``relations.py``), in the
question style of the benchmark. Boxes and points are in the model's ``frame`` (840 px in the
paper, the image size in the embedded default), rounded to integers (docs/data.md, "Training turns").

The paper's turns come from multi-object prompts ("'a' and 'b'") split into sub-queries; refer
sentences name one object, so here the second object of a turn is another ref of the same image.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from tqdm import tqdm

from regionreasoner.data.refer import ReferImage, Target, load_refer
from regionreasoner.dialogs.geometry import point_inside, point_to_frame, render_box, to_frame
from regionreasoner.dialogs.relations import REF_BOX, check_relations, choose_citation, question_template
from regionreasoner.io import atomic_write_jsonl


def _turn(image: ReferImage, image_dir: Path, coco: COCO, frame: int, target: Target, round_: int) -> dict[str, Any]:
    ann = coco.anns[target.ann_id]
    box = image.boxes[target.ann_id]
    point = point_inside(ann["segmentation"], box, image.width, image.height)
    return {
        "id": f"{image.image_id}-{target.ref_id}-r{round_}",
        "image_path": str(image_dir / image.file_name),
        "width": image.width,
        "height": image.height,
        "round": round_,
        "solution": [
            {
                "bbox_2d": to_frame(box, image.width, image.height, frame),
                "point_2d": point_to_frame(point, image.width, image.height, frame),
            }
        ],
        "scene": image.captions[0] if image.captions else "",
    }


def image_turns(
    image: ReferImage,
    image_dir: Path,
    coco: COCO,
    frame: int,
    seed: int,
    relations: list[str],
    cited_fraction: float,
) -> list[dict[str, Any]]:
    """Training turns of one image, seeded by ``(seed, image_id)``: refs in ref-id order."""
    rng = random.Random(f"train/{seed}/{image.image_id}")
    sentences = {t.ann_id: rng.choice(t.sentences) for t in image.targets}
    rows = []
    for target in image.targets:
        sentence = sentences[target.ann_id]
        rows.append(
            _turn(image, image_dir, coco, frame, target, 1)
            | {
                "problem": sentence,
                "reference_boxes": [],
                "focus": "",
                "target": sentence,
                "relation": None,
            }
        )
        if rng.random() >= cited_fraction:
            continue
        others = [t for t in image.targets if t.ann_id != target.ann_id]
        citation = choose_citation(target.ann_id, [t.ann_id for t in others], image.boxes, relations, rng)
        if citation is None:
            continue
        cited = others[citation.candidate]
        reference = to_frame(image.boxes[cited.ann_id], image.width, image.height, frame)
        template = question_template(citation.relation, sentence, citation.unique)
        rows.append(
            _turn(image, image_dir, coco, frame, target, 2)
            | {
                "problem": template.replace(REF_BOX, render_box(reference)),
                "reference_boxes": [reference],
                "focus": sentences[cited.ann_id],
                "target": sentence,
                "relation": citation.relation,
            }
        )
    return rows


def build_train(
    refs: Path,
    instances: Path,
    captions: Path | None,
    image_dir: Path,
    splits: list[str],
    out: Path,
    frame: int,
    seed: int = 0,
    relations: list[str] | None = None,
    cited_fraction: float = 0.5,
) -> None:
    """Write the training turns of ``splits`` as JSON lines to ``out`` (byte-identical per seed).

    ``scene`` is the image's first caption (empty without ``captions``); ``focus`` the cited
    object's sentence.
    """
    if not 0.0 <= cited_fraction <= 1.0:
        raise ValueError(f"cited_fraction must be in [0, 1], got {cited_fraction}")
    keys = check_relations(relations)
    images, coco = load_refer(refs, instances, captions, splits)
    rows = []
    for image in tqdm(images, desc="training turns", unit="image"):
        rows.extend(image_turns(image, Path(image_dir), coco, frame, seed, keys, cited_fraction))
    atomic_write_jsonl(out, rows)
    cited = sum(row["round"] == 2 for row in rows)
    print(f"wrote {len(rows)} training turns ({cited} citing a reference box) to {out}")
